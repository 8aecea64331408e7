package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// follower is a running `cairn events -f`, its stdout lines on a channel.
type follower struct {
	t      *testing.T
	cmd    *exec.Cmd
	lines  chan string
	exited chan error
	stderr *lockedBuffer
}

func (e *env) follow(args ...string) *follower {
	e.t.Helper()
	c := exec.Command(cairnBinary(e.t), append(append([]string{"events", "-f"}, args...), "--api", e.api, "--token", e.token)...)
	f := &follower{t: e.t, cmd: c, lines: make(chan string, 100), exited: make(chan error, 1), stderr: &lockedBuffer{}}
	c.Stderr = f.stderr
	out, err := c.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f.lines <- sc.Text()
		}
		close(f.lines)
		f.exited <- c.Wait()
	}()
	e.t.Cleanup(func() {
		if c.ProcessState == nil {
			c.Process.Kill()
		}
	})
	return f
}

// next returns the next line, failing after wait.
func (f *follower) next(wait time.Duration) string {
	f.t.Helper()
	select {
	case l, ok := <-f.lines:
		if !ok {
			f.t.Fatalf("cairn events -f ended: %s", f.stderr.String())
		}
		return l
	case <-time.After(wait):
		f.t.Fatalf("cairn events -f printed nothing in %v", wait)
	}
	return ""
}

// interrupt sends SIGINT and returns the exit code.
func (f *follower) interrupt() int {
	f.t.Helper()
	f.cmd.Process.Signal(os.Interrupt)
	drained := make(chan struct{})
	go func() {
		for range f.lines { // drain
		}
		close(drained)
	}()
	select {
	case <-drained:
	case <-time.After(10 * time.Second):
		f.t.Fatal("cairn events -f still writes 10 s after SIGINT")
	}
	select {
	case err := <-f.exited:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			f.t.Fatal(err)
		}
		return 0
	case <-time.After(10 * time.Second):
		f.t.Fatal("cairn events -f still runs 10 s after SIGINT")
	}
	return -1
}

// TestEventsFollow: `cairn events -f` prints the audit log so far, then
// each new event as it is appended (within its 1 s poll and a margin), as
// one JSON object per line with --json, only the deployment's with
// --deployment, and new deployments by name without; SIGINT ends it (130).
func TestEventsFollow(t *testing.T) {
	e := start(t)
	e.publish("live", site("one")) // deployment.create, publish, activate
	e.publish("quiet", site("q"))

	js := e.follow("--deployment", "live", "--json")
	human := e.follow()
	type event struct {
		ID     int64  `json:"id"`
		Action string `json:"action"`
		Dep    string `json:"deployment_id"`
	}
	var liveID string
	for i, want := range []string{"deployment.create", "publish", "activate"} {
		var ev event
		if l := js.next(10 * time.Second); json.Unmarshal([]byte(l), &ev) != nil || ev.Action != want {
			t.Fatalf("JSON line %d: %q, want a %s event", i, l, want)
		}
		liveID = ev.Dep
	}
	for i := range 6 { // live's three events, then quiet's
		if l := human.next(10 * time.Second); !strings.HasPrefix(l, "#") {
			t.Fatalf("human line %d: %q", i, l)
		}
	}

	// New events arrive while it runs.
	dir := siteDir(t, site("two"))
	if _, stderr, code := e.runCLI(dir, "publish", ".", "--deployment", "live"); code != 0 {
		t.Fatal(stderr)
	}
	for _, want := range []string{"publish", "activate"} {
		var ev event
		if l := js.next(5 * time.Second); json.Unmarshal([]byte(l), &ev) != nil || ev.Action != want || ev.Dep != liveID {
			t.Fatalf("followed JSON line %q, want live's %s", l, want)
		}
	}
	for _, want := range []string{"  publish  live  ", "  activate  live  "} {
		if l := human.next(5 * time.Second); !strings.Contains(l, want) {
			t.Fatalf("followed human line %q, want %q", l, want)
		}
	}
	// A deployment created meanwhile is named; --deployment leaves it out.
	if _, stderr, code := e.runCLI(dir, "publish", ".", "--deployment", "newer"); code != 0 {
		t.Fatal(stderr)
	}
	if l := human.next(5 * time.Second); !strings.Contains(l, "  deployment.create  newer  by ") {
		t.Fatalf("followed human line %q, want newer's deployment.create by name", l)
	}
	select {
	case l := <-js.lines:
		t.Fatalf("--deployment live printed another deployment's event %q", l)
	case <-time.After(2 * time.Second):
	}

	for name, f := range map[string]*follower{"--json": js, "human": human} {
		if code := f.interrupt(); code != 130 {
			t.Errorf("%s: exit %d after SIGINT, want 130; stderr %q", name, code, f.stderr.String())
		}
	}
}
