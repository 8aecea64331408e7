package e2e

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/cairnhq/cairn/internal/server"
)

var (
	hostAppOnce sync.Once
	hostAppBin  string
	hostAppErr  error
)

func hostApp(t *testing.T) string {
	t.Helper()
	hostAppOnce.Do(func() {
		_, self, _, _ := runtime.Caller(0)
		dir, err := os.MkdirTemp("", "cairn-e2e-hostapp-")
		if err != nil {
			hostAppErr = err
			return
		}
		hostAppBin = filepath.Join(dir, "hostapp")
		c := exec.Command("go", "build", "-o", hostAppBin, "./internal/e2e/testdata/hostapp")
		c.Dir = filepath.Join(filepath.Dir(self), "..", "..")
		if out, err := c.CombinedOutput(); err != nil {
			hostAppErr = err
			t.Logf("%s", out)
		}
	})
	if hostAppErr != nil {
		t.Fatal(hostAppErr)
	}
	return hostAppBin
}

// cli runs the cairn binary against e with token tok and returns stdout.
func (e *env) cli(tok string, args ...string) (string, error) {
	c := exec.Command(cairnBinary(e.t), append([]string{"--api", e.api, "--token", tok}, args...)...)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	if err != nil {
		return out.String() + errb.String(), err
	}
	return out.String(), nil
}

// startAgent runs `cairn agent --driver testproc` as a process of its own.
func startAgent(t *testing.T, e *env, tok, data string) *exec.Cmd {
	t.Helper()
	c := exec.Command(cairnBinary(t), "agent", "--api", e.api, "--token", tok, "--data", data,
		"--driver", "testproc", "--capacity", "cpu=8,memory=8GiB,instances=10", "--region", "eu",
		"--max-crashes", "3", "--backoff", "100ms")
	c.Env = append(os.Environ(), "CAIRN_AGENT_TEST_DRIVER=1")
	var logb bytes.Buffer
	c.Stderr = &logb
	// After the agent stops (cleanups run last first): its instances
	// outlive it, whatever the test did to it.
	t.Cleanup(func() { killTestprocInstances(t, data) })
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Process.Signal(os.Interrupt)
		c.Wait()
		if t.Failed() {
			t.Logf("agent log:\n%s", logb.String())
		}
	})
	return c
}

// killTestprocInstances kills the process group of every process whose
// environment names an exit file under data, the testproc driver's
// instances of an agent with that --data (sh -c in a session of its own,
// CAIRN_EXIT_FILE=<data>/<id>/exit, and the app it runs), and waits until
// they are gone. They outlive their agent by design, so a test that
// stops or kills one leaves them running unless they are stopped.
func killTestprocInstances(t *testing.T, data string) {
	t.Helper()
	mark := []byte("CAIRN_EXIT_FILE=" + filepath.Clean(data) + "/")
	find := func() []int {
		var pids []int
		dirs, _ := os.ReadDir("/proc")
		for _, d := range dirs {
			pid, err := strconv.Atoi(d.Name())
			if err != nil || pid <= 1 {
				continue
			}
			env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid)) // empty for a zombie
			for _, kv := range bytes.Split(env, []byte{0}) {
				if bytes.HasPrefix(kv, mark) {
					pids = append(pids, pid)
					break
				}
			}
		}
		return pids
	}
	self := syscall.Getpgrp()
	pids := find()
	if len(pids) > 0 {
		t.Logf("killing the testproc instance processes left under %s: %v", data, pids)
	}
	for deadline := time.Now().Add(10 * time.Second); len(pids) > 0; pids = find() {
		if time.Now().After(deadline) {
			t.Errorf("testproc instances under %s still run: pids %v", data, pids)
			return
		}
		for _, pid := range pids {
			if pgid, err := syscall.Getpgid(pid); err == nil && pgid > 1 && pgid != self {
				syscall.Kill(-pgid, syscall.SIGKILL)
			}
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type instanceJSON struct {
	ID, State, Addr, Host string
	Restarts              int
	TreeDigest            string `json:"tree_digest"`
}

func waitUntil(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("%s: not within %s", what, d)
}

// TestAgent drives a real agent process through the API: it registers and
// heartbeats; `cairn scale app 2` places two instances that it starts and
// reports healthy; `cairn ps` and `cairn hosts` print them; `cairn logs -f`
// streams; an agent killed with SIGKILL and started again adopts its
// instances without restarting them; an agent token can do nothing else.
func TestAgent(t *testing.T) {
	e := start(t, func(c *server.Config) { c.HostTimeout = 3 * time.Second })
	app := hostApp(t)
	var tok struct{ Secret string }
	if code, _ := e.do("POST", "/v1/tokens", e.jsonBody(map[string]any{"name": "agent", "scopes": []string{"agent"}}), &tok); code != 201 {
		t.Fatalf("token: %d", code)
	}
	// The agent token: none of the admin or read routes.
	for _, r := range []struct{ method, path string }{{"GET", "/v1/deployments"}, {"POST", "/v1/deployments"},
		{"GET", "/v1/tokens"}, {"GET", "/v1/hosts"}, {"POST", "/v1/gc"}, {"GET", "/v1/events"}} {
		req, _ := http.NewRequest(r.method, e.api+r.path, strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer "+tok.Secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Errorf("agent token: %s %s = %d, want 403", r.method, r.path, resp.StatusCode)
		}
	}

	// A rootfs app whose cmd the testproc driver runs on the host.
	if code, _ := e.do("POST", "/v1/deployments", e.jsonBody(map[string]any{"name": "app", "kind": "rootfs"}), nil); code != 201 {
		t.Fatalf("create: %d", code)
	}
	var plain bytes.Buffer
	tw := tar.NewWriter(&plain)
	tw.WriteHeader(&tar.Header{Name: "app", Typeflag: tar.TypeReg, Mode: 0o755, Size: 2})
	tw.Write([]byte("hi"))
	tw.Close()
	enc, _ := zstd.NewWriter(nil)
	rt, _ := json.Marshal(map[string]any{"cmd": []string{app}, "port": 8080, "health_check": map[string]any{"path": "/healthz"}})
	var v map[string]any
	if code, _ := e.do("POST", "/v1/deployments/app/versions?runtime="+url.QueryEscape(string(rt)),
		bytes.NewReader(enc.EncodeAll(plain.Bytes(), nil)), &v); code != 201 {
		t.Fatalf("publish: %d %v", code, v)
	}
	var rel map[string]any
	e.do("GET", "/v1/releases/"+v["artifact_sha256"].(string), nil, &rel)

	data := t.TempDir()
	ag := startAgent(t, e, tok.Secret, data)
	var hostID string
	waitUntil(t, "host registered", 10*time.Second, func() bool {
		var hs struct{ Hosts []map[string]any }
		e.do("GET", "/v1/hosts", nil, &hs)
		if len(hs.Hosts) == 1 && hs.Hosts[0]["state"] == "ready" {
			hostID = hs.Hosts[0]["id"].(string)
			return true
		}
		return false
	})
	if out, err := e.cli(e.token, "scale", "app", "2"); err != nil || out != "app: 2 replicas (cairn ps app)\n" {
		t.Fatalf("scale: %q %v", out, err)
	}
	instances := func() []instanceJSON {
		out, err := e.cli(e.token, "ps", "app", "--json")
		if err != nil {
			t.Fatalf("ps: %s %v", out, err)
		}
		var is []instanceJSON
		if err := json.Unmarshal([]byte(out), &is); err != nil {
			t.Fatalf("ps --json: %v\n%s", err, out)
		}
		return is
	}
	waitUntil(t, "2 healthy instances", 20*time.Second, func() bool {
		is := instances()
		return len(is) == 2 && is[0].State == "healthy" && is[1].State == "healthy"
	})
	is := instances()
	pids := map[string]string{}
	for _, in := range is {
		if in.Host != hostID || in.TreeDigest != rel["tree_sha256"] {
			t.Errorf("instance %+v; want host %s, tree digest %v", in, hostID, rel["tree_sha256"])
		}
		pids[in.ID] = httpBody(t, "http://"+in.Addr+"/")
	}

	// Human output, with ids, addresses and times normalised.
	out, _ := e.cli(e.token, "ps", "app")
	norm := regexp.MustCompile(`app-[0-9a-f]{8}|127\.0\.0\.1:\d+|\d{4}-\d\d-\d\d \d\d:\d\d|host_[a-z0-9]+|\b[0-9a-f]{12}\b`)
	got := norm.ReplaceAllStringFunc(out, func(s string) string {
		switch {
		case strings.HasPrefix(s, "app-"):
			return "app-ID"
		case strings.HasPrefix(s, "127."):
			return "ADDR"
		case strings.HasPrefix(s, "host_"):
			return "HOST"
		case len(s) == 12:
			return "SHA"
		}
		return "TIME"
	})
	golden := "INSTANCE HOST VERSION RELEASE TREE STATE ADDRESS RESTARTS EXIT STARTED\n" +
		"app-ID HOST v1 SHA SHA healthy ADDR 0 - TIME\n" +
		"app-ID HOST v1 SHA SHA healthy ADDR 0 - TIME\n"
	if squash(got) != squash(golden) {
		t.Errorf("cairn ps app:\n%s\nwant (spacing aside)\n%s", got, golden)
	}
	out, _ = e.cli(e.token, "hosts")
	got = norm.ReplaceAllStringFunc(out, func(s string) string {
		if strings.HasPrefix(s, "host_") {
			return "HOST"
		}
		return "TIME"
	})
	hn, _ := os.Hostname()
	golden = "ID HOSTNAME REGION DRIVER ISOLATION ACCEL INSTANCES CPU MEMORY STATE LAST SEEN\n" +
		"HOST " + hn + " eu testproc container - 2/10 2/8 1.1 GB/8.6 GB ready TIME\n"
	if squash(got) != squash(golden) {
		t.Errorf("cairn hosts:\n%s\nwant (spacing aside)\n%s", got, golden)
	}
	out, _ = e.cli(e.token, "hosts", "--json")
	var hj []map[string]any
	if err := json.Unmarshal([]byte(out), &hj); err != nil || len(hj) != 1 || hj[0]["driver"] != "testproc" ||
		hj[0]["isolation"] != "container" || hj[0]["agent_key"] != nil {
		t.Errorf("hosts --json: %s %v", out, err)
	}

	// cairn logs -f streams a line the app logs after it started.
	ctx, cancel := context.WithCancel(t.Context())
	lc := exec.CommandContext(ctx, cairnBinary(t), "--api", e.api, "--token", e.token, "logs", "app", "--instance", is[0].ID, "-f")
	stdout, _ := lc.StdoutPipe()
	if err := lc.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	time.Sleep(300 * time.Millisecond)
	httpBody(t, "http://"+is[0].Addr+"/marker-42")
	timeout := time.After(10 * time.Second)
wait:
	for {
		select {
		case l := <-lines:
			if l == "request /marker-42" {
				break wait
			}
		case <-timeout:
			t.Fatal("cairn logs -f did not stream the new line in 10 s")
		}
	}
	cancel()
	lc.Wait()

	// kill -9 the agent, start it again: the instances are adopted.
	ag.Process.Signal(syscall.SIGKILL)
	ag.Wait()
	startAgent(t, e, tok.Secret, data)
	time.Sleep(3 * time.Second) // a few heartbeats
	for _, in := range instances() {
		if in.State != "healthy" || in.Restarts != 0 || httpBody(t, "http://"+in.Addr+"/") != pids[in.ID] || in.Host != hostID {
			t.Errorf("after the agent restart: %+v (pid %s); want the same healthy process", in, pids[in.ID])
		}
	}

	// An app that crashes at start: restarted with backoff, then failed
	// after 3 exits, with its last lines in the record and in cairn logs.
	if code, _ := e.do("POST", "/v1/deployments", e.jsonBody(map[string]any{"name": "crashy", "kind": "rootfs"}), nil); code != 201 {
		t.Fatalf("create: %d", code)
	}
	rt, _ = json.Marshal(map[string]any{"cmd": []string{app}, "port": 8080, "env": map[string]string{"CRASH_AT_START": "1"}})
	if code, _ := e.do("POST", "/v1/deployments/crashy/versions?runtime="+url.QueryEscape(string(rt)),
		bytes.NewReader(enc.EncodeAll(plain.Bytes(), nil)), &v); code != 201 {
		t.Fatalf("publish: %d %v", code, v)
	}
	if _, err := e.cli(e.token, "scale", "crashy", "1"); err != nil {
		t.Fatal(err)
	}
	var failed []map[string]any
	waitUntil(t, "crashy failed", 20*time.Second, func() bool {
		out, _ := e.cli(e.token, "ps", "crashy", "--json")
		json.Unmarshal([]byte(out), &failed)
		return len(failed) == 1 && failed[0]["state"] == "failed"
	})
	if f := failed[0]; f["restarts"] != float64(2) || f["exit_code"] != float64(3) ||
		!strings.Contains(strings.Join(strings.Fields(toString(f["last_log"])), " "), "crashing at start") {
		t.Errorf("failed instance %v", f)
	}
	if out, err := e.cli(e.token, "logs", "crashy"); err != nil || strings.Count(out, "crashing at start") != 3 {
		t.Errorf("cairn logs crashy: %q %v; want 3 runs' lines", out, err)
	}
	if out, _ := e.cli(e.token, "ps", "crashy"); !strings.Contains(out, "failed") {
		t.Errorf("cairn ps crashy:\n%s", out)
	}
	if _, err := e.cli(e.token, "scale", "crashy", "0"); err != nil {
		t.Fatal(err)
	}

	// On the embedded default (the sched role in this process, SQLite):
	// activate and rollback of the running app are rolling replacements.
	publishHostApp(t, e, "app", "two", map[string]string{"V": "2"}, false)
	for _, step := range []struct {
		args []string
		want string
		v    int64
	}{{[]string{"activate", "app", "2"}, "app v2 is now active", 2}, {[]string{"rollback", "app"}, "app v1 is active again", 1}} {
		if out, err := e.cli(e.token, step.args...); err != nil || !strings.Contains(out, step.want) {
			t.Fatalf("%v: %q %v", step.args, out, err)
		}
		waitUntil(t, fmt.Sprintf("2 healthy v%d instances only", step.v), 15*time.Second, func() bool {
			is := e.psJSON("app")
			n, _ := healthyOf(is, step.v)
			return n == 2 && len(is) == 2
		})
	}

	// Scale to 0: the instances stop.
	running := instances()
	if _, err := e.cli(e.token, "scale", "app", "0"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "no instances", 10*time.Second, func() bool { return len(instances()) == 0 })
	for _, in := range append(running, is[0]) {
		waitUntil(t, "processes stopped", 10*time.Second, func() bool {
			_, err := http.Get("http://" + in.Addr + "/")
			return err != nil
		})
	}
	// Events: host.register, deployment.scale, instance.create/remove.
	out, _ = e.cli(e.token, "events")
	for _, a := range []string{"host.register", "deployment.scale", "instance.create", "instance.remove", "instance.failed"} {
		if !strings.Contains(out, a) {
			t.Errorf("events lack %s:\n%s", a, out)
		}
	}
}

func toString(v any) string { b, _ := json.Marshal(v); return string(b) }

func squash(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ¶ ")), " ")
}

func httpBody(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b))
}
