package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/cairnhq/cairn/internal/meta/postgres/pgtest"
)

// logBuf is a process's stderr, safe to read while it writes.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// serverProc starts `cairn server ARGS` at info level, its stderr kept.
func serverProc(t *testing.T, dir string, args ...string) (*exec.Cmd, *logBuf) {
	t.Helper()
	c := exec.Command(cairnBinary(t), append([]string{"server"}, args...)...)
	c.Dir = dir
	c.Env = append(os.Environ(), "CAIRN_LOG_LEVEL=info", "CAIRN_LOG_FORMAT=text", "CAIRN_ACCESS_LOG=false")
	lb := &logBuf{}
	c.Stderr = lb
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Process.Signal(os.Interrupt)
		c.Wait()
		if t.Failed() {
			t.Logf("server %v log:\n%s", args[len(args)-1], lb.String())
		}
	})
	return c, lb
}

// publishHostApp publishes a rootfs version of dep that runs the hostapp
// with env, not activated unless activate.
func publishHostApp(t *testing.T, e *env, dep, marker string, env map[string]string, activate bool) {
	t.Helper()
	var plain bytes.Buffer
	tw := tar.NewWriter(&plain)
	tw.WriteHeader(&tar.Header{Name: "app", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(marker))})
	tw.Write([]byte(marker))
	tw.Close()
	enc, _ := zstd.NewWriter(nil)
	rt, _ := json.Marshal(map[string]any{"cmd": []string{hostApp(t)}, "port": 8080, "env": env,
		"health_check": map[string]any{"path": "/healthz"}})
	var v map[string]any
	if code, _ := e.do("POST", "/v1/deployments/"+dep+"/versions?activate="+strconv.FormatBool(activate)+"&runtime="+url.QueryEscape(string(rt)),
		bytes.NewReader(enc.EncodeAll(plain.Bytes(), nil)), &v); code != 201 {
		t.Fatalf("publish %s: %d %v", marker, code, v)
	}
}

type schedInstance struct {
	ID, State, Addr, Host string
	VersionNumber         int64 `json:"version_number"`
}

func (e *env) psJSON(dep string) []schedInstance {
	e.t.Helper()
	out, err := e.cli(e.token, "ps", dep, "--json")
	if err != nil {
		e.t.Fatalf("ps: %s %v", out, err)
	}
	var is []schedInstance
	if err := json.Unmarshal([]byte(out), &is); err != nil {
		e.t.Fatalf("ps --json: %v\n%s", err, out)
	}
	return is
}

func healthyOf(is []schedInstance, version int64) (n int, hosts map[string]int) {
	hosts = map[string]int{}
	for _, in := range is {
		if in.State == "healthy" && in.VersionNumber == version {
			n++
			hosts[in.Host]++
		}
	}
	return n, hosts
}

// TestSchedulerProcesses runs api+edge, two sched processes on one
// PostgreSQL schema and two agents (testproc driver), and checks: a
// rollout that succeeds (the pointer moves once the new instances are
// healthy, the old ones stop); one that fails (an app that never gets
// healthy: the active version stays, its instances go, the failure is in
// the API and the events); a kill -9 of the scheduler leader (the other
// leads within 10 s, no instance created twice); a kill -9 of an agent
// and its instances (replacements healthy on the other host within 10 s).
func TestSchedulerProcesses(t *testing.T) {
	db, _ := pgtest.FreshSchema(t)
	dir := t.TempDir()
	common := []string{"--database", db, "--blobs", "file://" + filepath.Join(dir, "blobs"), "--token", sharedToken}
	api := freeAddr(t)
	serverProc(t, dir, append(common, "--data", filepath.Join(dir, "api"), "--api-addr", api, "--edge-addr", freeAddr(t),
		"--roles", "api,edge")...)
	var scheds []*exec.Cmd
	var schedLogs []*logBuf
	for i := range 2 {
		c, lb := serverProc(t, dir, append(common, "--data", filepath.Join(dir, fmt.Sprint("sched", i)),
			"--host-lost-after", "3s", "--roles", "sched")...)
		scheds, schedLogs = append(scheds, c), append(schedLogs, lb)
	}
	waitListen(t, api)
	e := &env{t: t, api: "http://" + api, token: sharedToken}
	var tok struct{ Secret string }
	if code, _ := e.do("POST", "/v1/tokens", e.jsonBody(map[string]any{"name": "agent", "scopes": []string{"agent"}}), &tok); code != 201 {
		t.Fatalf("token: %d", code)
	}
	agents := []*exec.Cmd{startAgent(t, e, tok.Secret, t.TempDir()), startAgent(t, e, tok.Secret, t.TempDir())}
	// Before the agents stop (cleanups run last first): scale to 0 and
	// wait until the instances' processes are gone, since an agent that
	// stops leaves its instances running.
	t.Cleanup(func() { stopInstances(t, e, "app") })
	waitUntil(t, "2 hosts ready", 15*time.Second, func() bool {
		var hs struct{ Hosts []map[string]any }
		e.do("GET", "/v1/hosts", nil, &hs)
		return len(hs.Hosts) == 2 && hs.Hosts[0]["state"] == "ready" && hs.Hosts[1]["state"] == "ready"
	})
	if code, _ := e.do("POST", "/v1/deployments", e.jsonBody(map[string]any{"name": "app", "kind": "rootfs"}), nil); code != 201 {
		t.Fatalf("create: %d", code)
	}
	publishHostApp(t, e, "app", "one", map[string]string{"V": "1"}, true)
	publishHostApp(t, e, "app", "two", map[string]string{"V": "2"}, false)
	publishHostApp(t, e, "app", "sick", map[string]string{"CRASH_AT_START": "1"}, false)
	if out, err := e.cli(e.token, "scale", "app", "3"); err != nil {
		t.Fatalf("scale: %s %v", out, err)
	}
	waitUntil(t, "3 healthy v1 instances over both hosts", 20*time.Second, func() bool {
		n, hosts := healthyOf(e.psJSON("app"), 1)
		return n == 3 && len(hosts) == 2
	})

	// A rollout that succeeds: the CLI waits, showing progress.
	start := time.Now()
	out, err := e.cli(e.token, "activate", "app", "2")
	if err != nil || !strings.Contains(out, "app v2 is now active") {
		t.Fatalf("activate 2: %q %v", out, err)
	}
	t.Logf("rollout of 3 instances: %v", time.Since(start).Round(time.Millisecond))
	is := e.psJSON("app")
	if n, _ := healthyOf(is, 2); n != 3 {
		t.Fatalf("after the rollout: %+v; want 3 healthy v2", is)
	}
	waitUntil(t, "the old instances stopped after the grace", 15*time.Second, func() bool {
		is := e.psJSON("app")
		n, _ := healthyOf(is, 2)
		return len(is) == 3 && n == 3
	})

	// A rollout that cannot get healthy: the active version stays.
	out, err = e.cli(e.token, "activate", "app", "3", "--rollout-timeout", "4s")
	if err == nil || !strings.Contains(out, "rollout of app to v3 failed") || !strings.Contains(out, "unchanged (v2)") {
		t.Fatalf("activate 3 (never healthy): %q %v; want a failure", out, err)
	}
	var d map[string]any
	e.do("GET", "/v1/deployments/app", nil, &d)
	if d["active_version_number"] != float64(2) || d["rollout"].(map[string]any)["state"] != "failed" {
		t.Fatalf("deployment after the failed rollout: %v", d)
	}
	waitUntil(t, "the failed rollout's instances removed", 10*time.Second, func() bool {
		is := e.psJSON("app")
		n, _ := healthyOf(is, 2)
		return len(is) == 3 && n == 3
	})
	out, _ = e.cli(e.token, "events", "--json")
	for _, a := range []string{"rollout.start", "rollout.progress", "rollout.succeed", "rollout.fail"} {
		if !strings.Contains(out, `"`+a+`"`) {
			t.Errorf("events lack %s", a)
		}
	}
	out, _ = e.cli(e.token, "events")
	if !strings.Contains(out, "3/3 healthy") || !strings.Contains(out, "0 of 3 instances healthy by the deadline") {
		t.Errorf("cairn events shows no rollout progress or failure:\n%s", out)
	}

	// Leader loss: kill -9 the leader; the other leads within 10 s.
	t.Logf("leader handover: %v", killSchedLeader(t, scheds, schedLogs).Round(time.Millisecond))
	if out, err := e.cli(e.token, "scale", "app", "4"); err != nil {
		t.Fatalf("scale 4: %s %v", out, err)
	}
	waitUntil(t, "4 healthy v2 instances", 15*time.Second, func() bool {
		n, _ := healthyOf(e.psJSON("app"), 2)
		return n == 4
	})

	// Host loss: kill -9 one agent and its instances.
	is = e.psJSON("app")
	victimHost := is[0].Host
	victim := -1
	for i, a := range agents { // an agent keeps its host id in <data>/host-id
		b, err := os.ReadFile(filepath.Join(agentDataDirs(a), "host-id"))
		if err == nil && strings.TrimSpace(string(b)) == victimHost {
			victim = i
		}
	}
	if victim < 0 {
		t.Fatalf("no agent for host %s", victimHost)
	}
	agents[victim].Process.Signal(syscall.SIGKILL)
	for _, in := range is {
		if in.Host != victimHost {
			continue
		}
		var pid int
		if _, err := fmt.Sscanf(httpBody(t, "http://"+in.Addr+"/"), "pid %d", &pid); err == nil && pid > 1 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	lostAt := time.Now()
	waitUntil(t, "4 healthy instances on the other host", 10*time.Second, func() bool {
		n, hosts := healthyOf(e.psJSON("app"), 2)
		return n == 4 && len(hosts) == 1 && hosts[victimHost] == 0
	})
	t.Logf("host loss → 4 healthy elsewhere: %v", time.Since(lostAt).Round(time.Millisecond))

	// No instance was created twice: every instance.create names a new id.
	e.createdOnce("deployment=app")
}

// createdOnce fails the test for each instance that has more than one
// instance.create among the last 1000 events that query (a /v1/events
// query, "" for all) selects; it returns how many there are.
func (e *env) createdOnce(query string) int {
	e.t.Helper()
	var evs struct {
		Events []struct {
			Action string
			Detail map[string]any
		}
	}
	if query != "" {
		query += "&"
	}
	e.do("GET", "/v1/events?"+query+"limit=1000", nil, &evs)
	seen := map[string]bool{}
	creates := 0
	for _, ev := range evs.Events {
		if ev.Action == "instance.create" {
			id, _ := ev.Detail["instance_id"].(string)
			if seen[id] {
				e.t.Errorf("instance %s created twice", id)
			}
			seen[id] = true
			creates++
		}
	}
	return creates
}

// killSchedLeader waits until one of two sched processes leads, kills it
// with SIGKILL and waits until the other leads (within 10 s); it returns
// the time from the kill to the handover.
func killSchedLeader(t *testing.T, scheds []*exec.Cmd, logs []*logBuf) time.Duration {
	t.Helper()
	leader := -1
	waitUntil(t, "a leader", 5*time.Second, func() bool {
		for i, lb := range logs {
			if strings.Contains(lb.String(), "scheduler: leading") {
				leader = i
				return true
			}
		}
		return false
	})
	scheds[leader].Process.Signal(syscall.SIGKILL)
	killed := time.Now()
	waitUntil(t, "the standby leads", 10*time.Second, func() bool {
		return strings.Contains(logs[1-leader].String(), "scheduler: leading")
	})
	return time.Since(killed)
}

// agentDataDirs is the --data of an agent process.
func agentDataDirs(c *exec.Cmd) string {
	for i, a := range c.Args {
		if a == "--data" && i+1 < len(c.Args) {
			return c.Args[i+1]
		}
	}
	return ""
}

// TestDesiredCLI: `cairn deployment set` sets a dynamic deployment's
// desired state (human and --json output, history in the API), refuses
// bad values with one line and a non-zero exit; `cairn host drain`.
func TestDesiredCLI(t *testing.T) {
	e := start(t)
	if code, _ := e.do("POST", "/v1/deployments", e.jsonBody(map[string]any{"name": "app", "kind": "rootfs"}), nil); code != 201 {
		t.Fatalf("create: %d", code)
	}
	out, err := e.cli(e.token, "deployment", "set", "app", "--cpu", "0.5", "--memory", "256MiB", "--regions", "eu=2,us=1",
		"--min-healthy", "2", "--isolation", "microvm", "--autostop", "10m", "--health-path", "/healthz")
	want := "app: 3 replicas, cpu 0.5, memory 268.4 MB, regions eu=2,us=1, min healthy 2, isolation microvm, autostop 10m, health check /healthz\n"
	if err != nil || out != want {
		t.Fatalf("deployment set: %q %v\nwant %q", out, err, want)
	}
	out, err = e.cli(e.token, "deployment", "set", "app", "--regions", "none", "--min-healthy", "-1", "--json")
	var d struct{ Desired map[string]any }
	if err != nil || json.Unmarshal([]byte(out), &d) != nil || d.Desired["regions"] != nil || d.Desired["min_healthy"] != nil ||
		d.Desired["replicas"] != float64(3) {
		t.Fatalf("deployment set --json: %q %v", out, err)
	}
	var h struct{ History []map[string]any }
	e.do("GET", "/v1/deployments/app/desired", nil, &h)
	if len(h.History) != 2 {
		t.Errorf("history: %v", h.History)
	}
	for _, bad := range [][]string{{"--isolation", "vm"}, {"--memory", "lots"}, {"--regions", "eu"}, {"--autostop", "soon"}} {
		out, err := e.cli(e.token, append([]string{"deployment", "set", "app"}, bad...)...)
		if err == nil || strings.Count(strings.TrimSpace(out), "\n") != 0 {
			t.Errorf("deployment set %v: %q %v; want one line and an error", bad, out, err)
		}
	}
	if code, _ := e.do("POST", "/v1/hosts", e.jsonBody(map[string]any{"id": "h1", "driver": "runc", "isolation": "container"}), nil); code != 200 {
		t.Fatalf("register: %d", code)
	}
	if out, err := e.cli(e.token, "host", "drain", "h1"); err != nil || !strings.HasPrefix(out, "h1: draining;") {
		t.Errorf("host drain: %q %v", out, err)
	}
	if out, err := e.cli(e.token, "host", "drain", "h1", "--json"); err != nil || !strings.Contains(out, `"state": "draining"`) {
		t.Errorf("host drain --json: %q %v", out, err)
	}
	if out, err := e.cli(e.token, "host", "drain", "nope"); err == nil {
		t.Errorf("host drain nope: %q, want an error", out)
	}
}

// stopInstances scales dep to 0 and waits until its instances no longer
// answer.
func stopInstances(t *testing.T, e *env, dep string) {
	is := e.psJSON(dep)
	if out, err := e.cli(e.token, "scale", dep, "0"); err != nil {
		t.Errorf("scale %s 0: %s %v", dep, out, err)
		return
	}
	for _, in := range is {
		if in.Addr == "" {
			continue
		}
		waitUntil(t, "instance "+in.ID+" stopped", 15*time.Second, func() bool {
			c, err := net.DialTimeout("tcp", in.Addr, 200*time.Millisecond)
			if err != nil {
				return true
			}
			c.Close()
			return false
		})
	}
}
