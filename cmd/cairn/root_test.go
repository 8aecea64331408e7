package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/internal/meta"
)

func TestTokenLookupOrder(t *testing.T) {
	api := newFakeAPI(t)
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "token"), []byte("  filetok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"flag wins", map[string]string{"CAIRN_TOKEN": "envtok", "CAIRN_DATA": data}, []string{"--token", "flagtok"}, "Bearer flagtok"},
		{"env over file", map[string]string{"CAIRN_TOKEN": "envtok"}, []string{"--data", data}, "Bearer envtok"},
		{"file via --data", nil, []string{"--data", data}, "Bearer filetok"},
		{"file via CAIRN_DATA", map[string]string{"CAIRN_DATA": data}, nil, "Bearer filetok"},
		{"--data beats CAIRN_DATA", map[string]string{"CAIRN_DATA": data}, []string{"--data", empty}, ""},
		{"none", nil, []string{"--data", empty}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(api.requests())
			args := append([]string{"activate", "demo", "2", "--api", api.URL}, tc.args...)
			if _, stderr, code := cli(t, tc.env, args...); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			reqs := api.requests()[before:]
			if len(reqs) != 1 || reqs[0].Auth != tc.want {
				t.Errorf("requests %+v, want Authorization %q", reqs, tc.want)
			}
		})
	}
}

func TestGlobalFlagsBeforeAndAfter(t *testing.T) {
	api := newFakeAPI(t)
	for _, args := range [][]string{
		{"--api", api.URL, "--json", "versions", "demo"},
		{"versions", "demo", "--api", api.URL, "--json"},
		{"--json", "versions", "--api=" + api.URL, "demo"},
	} {
		stdout, stderr, code := cli(t, nil, args...)
		if code != 0 || stderr != "" {
			t.Fatalf("%v: exit %d, stderr %q", args, code, stderr)
		}
		var vs []meta.Version
		if err := json.Unmarshal([]byte(stdout), &vs); err != nil {
			t.Fatalf("%v: stdout is not a JSON array: %v\n%s", args, err, stdout)
		}
		if len(vs) != 3 || vs[0].VersionNumber != 3 || vs[2].VersionNumber != 1 {
			t.Errorf("%v: versions %+v", args, vs)
		}
	}
}

func TestAPIFromEnvAndFlag(t *testing.T) {
	api := newFakeAPI(t)
	dead := newFakeAPI(t)
	dead.Close()
	// CAIRN_API is used without --api; --api wins over it.
	if _, stderr, code := cli(t, map[string]string{"CAIRN_API": api.URL}, "versions", "demo"); code != 0 {
		t.Errorf("CAIRN_API: exit %d: %s", code, stderr)
	}
	if _, stderr, code := cli(t, map[string]string{"CAIRN_API": dead.URL}, "versions", "demo", "--api", api.URL); code != 0 {
		t.Errorf("--api over CAIRN_API: exit %d: %s", code, stderr)
	}
	_, stderr, code := cli(t, map[string]string{"CAIRN_API": dead.URL}, "versions", "demo")
	if code != 1 || !strings.HasPrefix(stderr, "cairn: cannot reach the API at "+dead.URL+": ") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("dead API: exit %d, stderr %q", code, stderr)
	}
}

func TestErrorsAreOneLine(t *testing.T) {
	api := newFakeAPI(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"versions", "missing"}, `cairn: deployment "missing" not found (404)`},
		{[]string{"versions"}, "cairn: usage: cairn versions NAME [flags]"},
		{[]string{"activate", "demo", "two"}, `cairn: version number "two" must be a positive integer`},
		{[]string{"versions", "demo", "--nope"}, "cairn: unknown flag: --nope (see 'cairn versions --help')"},
		{[]string{"publish", "."}, `cairn: required flag(s) "deployment" not set`},
		{[]string{"--api", "ftp://x", "versions", "demo"}, `cairn: --api: "ftp://x" is not an http(s) URL`},
		{[]string{"publish", siteDir(t), "--deployment", "demo", "--data", t.TempDir()},
			"cairn: publishing demo: Unauthorized (401): no API token; pass --token, set CAIRN_TOKEN or use --data"},
	} {
		args := append(tc.args, "--api="+api.URL)
		if tc.args[0] == "--api" {
			args = tc.args
		}
		stdout, stderr, code := cli(t, nil, args...)
		if code != 1 || !strings.HasPrefix(stderr, tc.want) || strings.Count(stderr, "\n") != 1 || stdout != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %q", tc.args, code, stdout, stderr, tc.want)
		}
	}
}

func TestRollbackPrintsActiveVersion(t *testing.T) {
	api := newFakeAPI(t)
	stdout, stderr, code := cli(t, nil, "rollback", "demo", "--api", api.URL, "--token", "t")
	if code != 0 || !strings.HasPrefix(stdout, "demo v1 is active again → https://demo.sites.test/") {
		t.Errorf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if reqs := api.requests(); string(reqs[0].Body) != "{}" {
		t.Errorf("rollback body %q", reqs[0].Body)
	}
}
