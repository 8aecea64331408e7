package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestVerifyCommands(t *testing.T) {
	api, data := realServer(t)
	run := func(args ...string) (string, string, int) {
		t.Helper()
		return cli(t, nil, append(args, "--api", api, "--data", data)...)
	}
	must := func(args ...string) string {
		t.Helper()
		out, stderr, code := run(args...)
		if code != 0 {
			t.Fatalf("cairn %s: exit %d: %s", strings.Join(args, " "), code, stderr)
		}
		return out
	}
	if out := must("audit", "verify"); !strings.Contains(out, "audit log verified: no events yet") {
		t.Errorf("empty log: %s", out)
	}
	site := siteDir(t)
	must("publish", site, "--deployment", "demo", "--domain", "www.demo.test")
	os.WriteFile(filepath.Join(site, "index.html"), []byte("<h1>two</h1>"), 0o644)
	must("publish", site, "--deployment", "demo")

	out := must("audit", "verify")
	if !strings.HasPrefix(out, "audit log verified: 6 events, head ") {
		t.Errorf("audit verify: %s", out)
	}
	var rep struct {
		OK     bool   `json:"ok"`
		Events int    `json:"events"`
		Head   string `json:"head"`
	}
	if err := json.Unmarshal([]byte(must("audit", "verify", "--json")), &rep); err != nil || !rep.OK || rep.Events != 6 {
		t.Errorf("audit verify --json: %+v, %v", rep, err)
	}
	if out := must("audit", "verify", "--head", rep.Head); !strings.Contains(out, rep.Head) {
		t.Errorf("audit verify --head: %s", out)
	}
	if _, stderr, code := run("audit", "verify", "--head", strings.Repeat("0", 64)); code != exitMismatch ||
		!strings.Contains(stderr, "recorded head is not in the audit log") {
		t.Errorf("unknown --head: exit %d: %s", code, stderr)
	}

	if out := must("verify", "demo", "2"); !strings.Contains(out, "demo v2 verified") ||
		!strings.Contains(out, "files    2 (") || !strings.Contains(out, "every file checked") {
		t.Errorf("verify demo 2:\n%s", out)
	}
	var vr verifyReport
	if err := json.Unmarshal([]byte(must("verify", "demo", "1", "--json")), &vr); err != nil ||
		vr.VersionNumber != 1 || vr.Files != 2 || vr.TreeSHA256 == "" {
		t.Errorf("verify --json: %+v, %v", vr, err)
	}
	if _, stderr, code := run("verify", "demo", "9"); code != exitError || !strings.Contains(stderr, "404") {
		t.Errorf("verify missing version: exit %d: %s", code, stderr)
	}
	must("gc") // retention 0: collects v1's release
	if _, stderr, code := run("verify", "demo", "1"); code != exitError || !strings.Contains(stderr, "collected") ||
		!strings.Contains(stderr, "(410)") {
		t.Errorf("verify collected version: exit %d: %s", code, stderr)
	}
	if out := must("audit", "verify"); !strings.HasPrefix(out, "audit log verified: 7 events") {
		t.Errorf("audit verify after gc: %s", out)
	}
}
