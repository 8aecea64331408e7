package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// logLines runs `cairn server` with args and collects its JSON log lines.
func logLines(t *testing.T, args ...string) (get func() []map[string]any) {
	t.Helper()
	c := exec.Command(cairnBinary(t), append([]string{"server", "--log-format", "json"}, args...)...)
	c.Dir = t.TempDir()
	c.Env = append(os.Environ(), "CAIRN_LOG_LEVEL=info")
	stderr, err := c.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var lines []map[string]any
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				mu.Lock()
				lines = append(lines, m)
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { c.Process.Signal(os.Interrupt); <-done; c.Wait() })
	return func() []map[string]any {
		mu.Lock()
		defer mu.Unlock()
		return append([]map[string]any(nil), lines...)
	}
}

// TestAccessLog: both listeners log one line per request with its request
// id, status, bytes and a duration in ms; the id is the X-Request-Id the
// client got and the instance of a problem document; --access-log=false
// turns the lines off but keeps the ids.
func TestAccessLog(t *testing.T) {
	const token = "access-log-test-token-0123456789abcdef"
	for _, on := range []bool{true, false} {
		dir := t.TempDir()
		api, edge := freeAddr(t), freeAddr(t)
		get := logLines(t, "--data", filepath.Join(dir, "data"), "--token", token, "--api-addr", api,
			"--edge-addr", edge, "--access-log="+map[bool]string{true: "true", false: "false"}[on])
		waitListen(t, api)
		waitListen(t, edge)
		env := &env{t: t, api: "http://" + api, token: token}
		env.publish("logs", site("one"))

		req, _ := http.NewRequest("GET", "http://"+edge+"/", nil)
		req.Host = "logs.localhost"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		edgeID := resp.Header.Get("X-Request-Id")

		req, _ = http.NewRequest("GET", "http://"+api+"/v1/deployments/nope", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var prob map[string]any
		json.NewDecoder(resp.Body).Decode(&prob)
		resp.Body.Close()
		apiID := resp.Header.Get("X-Request-Id")
		if edgeID == "" || apiID == "" {
			t.Fatalf("X-Request-Id: edge %q, api %q", edgeID, apiID)
		}
		if prob["instance"] != "urn:cairn:request:"+apiID {
			t.Errorf("problem instance %v, X-Request-Id %s", prob["instance"], apiID)
		}

		find := func(id string) map[string]any {
			for range 100 {
				for _, l := range get() {
					if l["msg"] == "http" && l["request_id"] == id {
						return l
					}
				}
				time.Sleep(20 * time.Millisecond)
			}
			return nil
		}
		if !on {
			time.Sleep(200 * time.Millisecond)
			for _, l := range get() {
				if l["msg"] == "http" {
					t.Fatalf("--access-log=false logged %v", l)
				}
			}
			continue
		}
		el, al := find(edgeID), find(apiID)
		if el == nil || al == nil {
			t.Fatalf("no access line: edge %v, api %v", el, al)
		}
		if el["listener"] != "edge" || el["status"] != 200.0 || el["host"] != "logs.localhost" || el["bytes"].(float64) <= 0 {
			t.Errorf("edge line %v", el)
		}
		if al["listener"] != "api" || al["status"] != 404.0 || al["path"] != "/v1/deployments/nope" {
			t.Errorf("api line %v", al)
		}
		for _, l := range []map[string]any{el, al} {
			if _, ok := l["duration_ms"].(float64); !ok {
				t.Errorf("duration_ms missing or not a number: %v", l)
			}
		}
		var op map[string]any
		for _, l := range get() {
			if l["msg"] == "api: publish" {
				op = l
			}
		}
		if op == nil || op["token"] != "admin" || op["dep"] != "logs" || op["request_id"] == "" {
			t.Errorf("no operation line for the publish with its token: %v", op)
		}
		opLines(t, env, get)
		for _, l := range get() {
			if l["level"] == "DEBUG" {
				t.Errorf("a debug line at --log-level info: %v", l)
			}
		}
		for _, l := range get() {
			for k := range l {
				if strings.EqualFold(k, "took") {
					t.Errorf("a duration without its unit: %v", l)
				}
			}
		}
	}
}

// opLines: activate, rollback, each domain change and a GC run log one
// line each with the acting token's id and the request id.
func opLines(t *testing.T, e *env, get func() []map[string]any) {
	t.Helper()
	e.publish("logs", site("two"))
	call := func(method, path string, body any, want int) {
		t.Helper()
		var out map[string]any
		if code, _ := e.do(method, path, e.jsonBody(body), &out); code != want {
			t.Fatalf("%s %s: %d %v", method, path, code, out)
		}
	}
	call("POST", "/v1/deployments/logs/activate", map[string]any{"version_number": 1}, 200)
	call("POST", "/v1/deployments/logs/rollback", map[string]any{}, 200)
	call("POST", "/v1/domains", map[string]any{"hostname": "www.logs.test", "deployment": "logs"}, 201)
	call("PATCH", "/v1/domains/www.logs.test", map[string]any{"version_number": 1}, 200)
	call("POST", "/v1/gc", map[string]any{"dry_run": false}, 200)
	req, _ := http.NewRequest("DELETE", e.api+"/v1/domains/www.logs.test", nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Fatalf("DELETE domain: %d", resp.StatusCode)
	}
	want := map[string]string{"activate": "logs", "rollback": "logs", "domain.add": "", "domain.repoint": "www.logs.test",
		"domain.remove": "www.logs.test", "gc": ""}
	var got map[string][]map[string]any
	for range 100 { // the lines are written as the answers go out
		got = map[string][]map[string]any{}
		for _, l := range get() {
			op, _ := l["op"].(string)
			if _, ok := want[op]; ok && l["msg"] == "api: "+op {
				got[op] = append(got[op], l)
			}
		}
		if len(got) == len(want) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for op, key := range want {
		ls := got[op]
		if len(ls) != 1 {
			t.Errorf("%s: %d lines, want 1: %v", op, len(ls), ls)
			continue
		}
		l := ls[0]
		if l["token"] != "admin" || l["request_id"] == "" || l["msg"] != "api: "+op {
			t.Errorf("%s line without its token or request id: %v", op, l)
		}
		if key != "" && l["dep"] != key && l["hostname"] != key {
			t.Errorf("%s line does not name %s: %v", op, key, l)
		}
	}
}

// TestDebugLog: --log-level debug adds lines that info leaves out (here
// the edge's route loads, with the host and version served).
func TestDebugLog(t *testing.T) {
	const token = "debug-log-test-token-0123456789abcdef"
	dir := t.TempDir()
	api, edge := freeAddr(t), freeAddr(t)
	get := logLines(t, "--data", filepath.Join(dir, "data"), "--token", token, "--api-addr", api,
		"--edge-addr", edge, "--log-level", "debug")
	waitListen(t, api)
	waitListen(t, edge)
	env := &env{t: t, api: "http://" + api, token: token}
	env.publish("dbg", site("one"))
	req, _ := http.NewRequest("GET", "http://"+edge+"/", nil)
	req.Host = "dbg.localhost"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	for range 100 {
		for _, l := range get() {
			if l["level"] == "DEBUG" && l["msg"] == "edge: route loaded" && l["host"] == "dbg.localhost" {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("--log-level debug: no debug line for the route load; lines: %v", get())
}
