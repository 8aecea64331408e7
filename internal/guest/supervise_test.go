package guest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The init's supervision runs in a helper process (this test binary run
// again), a child subreaper as PID 1 would be: it must reap every child,
// and a test process has children of its own.
const helperEnv = "CAIRN_GUEST_SUPERVISE_HELPER"

func TestMain(m *testing.M) {
	if spec := os.Getenv(helperEnv); spec != "" {
		var app App
		if err := json.Unmarshal([]byte(spec), &app); err != nil {
			panic(err)
		}
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			panic(err)
		}
		sigs := make(chan os.Signal, 8)
		signal.Notify(sigs, append(Forwarded, syscall.SIGTERM)...)
		app.Out = os.Stdout
		code := Supervise(app, sigs, os.Stdout)
		fmt.Printf("supervised: exit %d, children left %d\n", code, len(children(os.Getpid(), false)))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// children lists the pids whose parent is pid (only zombies, if zombies).
func children(pid int, zombies bool) []int {
	var out []int
	des, _ := os.ReadDir("/proc")
	for _, de := range des {
		n, err := strconv.Atoi(de.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", de.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) < 2 || f[1] != strconv.Itoa(pid) {
			continue
		}
		if !zombies || f[0] == "Z" {
			out = append(out, n)
		}
	}
	return out
}

type helper struct {
	cmd   *exec.Cmd
	lines chan string
}

// supervise starts the helper supervising sh -c script with grace.
func supervise(t *testing.T, script string, grace time.Duration) *helper {
	t.Helper()
	spec, _ := json.Marshal(App{Args: []string{"/bin/sh", "-c", script}, Env: []string{"PATH=/usr/bin:/bin"}, Grace: grace})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(spec))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: cmd, lines: make(chan string, 64)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
		close(h.lines)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return h
}

// expect waits for a line with prefix and returns it.
func (h *helper) expect(t *testing.T, prefix string) string {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-h.lines:
			if !ok {
				t.Fatalf("helper ended before a line %q", prefix)
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-timeout:
			t.Fatalf("no line %q within 20s", prefix)
		}
	}
}

func (h *helper) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := h.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

func TestExitCodes(t *testing.T) {
	for _, c := range []struct {
		script string
		want   string
	}{
		{"exit 0", "supervised: exit 0, children left 0"},
		{"exit 7", "supervised: exit 7, children left 0"},
		{"kill -9 $$", "supervised: exit 137, children left 0"},
		{"kill -SEGV $$", "supervised: exit 139, children left 0"},
	} {
		h := supervise(t, c.script, time.Second)
		if got := h.expect(t, "supervised:"); got != c.want {
			t.Errorf("%s: %q, want %q", c.script, got, c.want)
		}
	}
}

func TestCommandNotFound(t *testing.T) {
	spec, _ := json.Marshal(App{Args: []string{"no-such-command"}, Env: []string{"PATH=/nonexistent"}})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(spec))
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "cairn-guest: start no-such-command: no-such-command: not found on PATH /nonexistent") ||
		!strings.Contains(string(out), "supervised: exit 127") {
		t.Fatalf("output %q", out)
	}
}

// TestForwardSignals: a forwarded signal reaches the app, which handles it.
func TestForwardSignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGUSR1, syscall.SIGHUP, syscall.SIGINT} {
		h := supervise(t, fmt.Sprintf(`trap 'echo got %d; exit 5' %d; echo ready; while :; do sleep 0.02; done`, sig, sig), time.Second)
		h.expect(t, "ready")
		h.signal(t, sig)
		h.expect(t, fmt.Sprintf("got %d", sig))
		if got := h.expect(t, "supervised:"); got != "supervised: exit 5, children left 0" {
			t.Errorf("%v: %q", sig, got)
		}
	}
}

// TestStopGraceful: SIGTERM reaches an app that handles it; no SIGKILL.
func TestStopGraceful(t *testing.T) {
	h := supervise(t, `trap 'echo stopping; exit 0' TERM; echo ready; while :; do sleep 0.02; done`, 10*time.Second)
	h.expect(t, "ready")
	t0 := time.Now()
	h.signal(t, syscall.SIGTERM)
	h.expect(t, "stopping")
	if got := h.expect(t, "supervised:"); got != "supervised: exit 0, children left 0" {
		t.Fatalf("%q", got)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Fatalf("stop took %v: waited for the grace", d)
	}
}

// TestStopIgnoringApp: an app that ignores SIGTERM is killed after the
// grace (137), not before.
func TestStopIgnoringApp(t *testing.T) {
	const grace = 700 * time.Millisecond
	h := supervise(t, `trap '' TERM; echo ready; while :; do sleep 0.02; done`, grace)
	h.expect(t, "ready")
	t0 := time.Now()
	h.signal(t, syscall.SIGTERM)
	h.expect(t, "cairn-guest: /bin/sh still runs 700ms after SIGTERM: SIGKILL")
	if got := h.expect(t, "supervised:"); got != "supervised: exit 137, children left 0" {
		t.Fatalf("%q", got)
	}
	if d := time.Since(t0); d < grace {
		t.Fatalf("killed after %v, before the grace %v", d, grace)
	}
}

// TestReapOrphans: orphans re-parented to the supervisor are reaped while
// the app runs, not left as zombies; what is left of the app's group when
// it ends is killed.
func TestReapOrphans(t *testing.T) {
	h := supervise(t, `for i in 1 2 3 4 5; do (sleep 0.01 &); done; sleep 30 & echo ready; sleep 2; exit 3`, time.Second)
	h.expect(t, "ready")
	pid := h.cmd.Process.Pid
	deadline := time.Now().Add(1500 * time.Millisecond)
	for {
		time.Sleep(100 * time.Millisecond)
		z := children(pid, true)
		if len(z) == 0 && len(children(pid, false)) >= 1 { // sh (and maybe orphans still sleeping)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("zombies under the supervisor: %v", z)
		}
	}
	// The background sleep 30 is in the app's group: killed and reaped.
	if got := h.expect(t, "supervised:"); got != "supervised: exit 3, children left 0" {
		t.Fatalf("%q", got)
	}
}
