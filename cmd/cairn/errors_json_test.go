package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestJSONErrors: with --json a failure is one problem document on stderr:
// the API's own for an API answer, a cli one for a local failure; the exit
// code is the same as without --json, and stdout stays empty.
func TestJSONErrors(t *testing.T) {
	api := newFakeAPI(t)
	for _, c := range []struct {
		name   string
		args   []string
		typ    string
		status float64
		detail string
	}{
		{"api answer", []string{"--json", "--api", api.URL, "versions", "missing"},
			"https://cairn.dev/problems/not-found", 404, `deployment "missing" not found`},
		{"usage", []string{"--json", "--api", api.URL, "activate", "demo"}, cliProblem, 0, "usage: cairn activate NAME N"},
		{"local", []string{"--json", "--api", "ftp://x", "versions", "demo"}, cliProblem, 0, `--api: "ftp://x" is not an http(s) URL`},
	} {
		t.Run(c.name, func(t *testing.T) {
			stdout, stderr, code := cli(t, nil, c.args...)
			if code != exitError || stdout != "" {
				t.Fatalf("exit %d, stdout %q", code, stdout)
			}
			if strings.Count(stderr, "\n") != 1 {
				t.Fatalf("stderr is not one line: %q", stderr)
			}
			var p map[string]any
			if err := json.Unmarshal([]byte(stderr), &p); err != nil {
				t.Fatalf("stderr is not JSON: %q", stderr)
			}
			if p["type"] != c.typ || p["exit_code"] != float64(exitError) || !strings.HasPrefix(p["detail"].(string), c.detail) {
				t.Errorf("problem %v", p)
			}
			if st, _ := p["status"].(float64); st != c.status {
				t.Errorf("status %v, want %v", p["status"], c.status)
			}
		})
	}
	// Without --json the same failure is one readable line.
	if _, stderr, _ := cli(t, nil, "--api", api.URL, "versions", "missing"); !strings.HasPrefix(stderr, "cairn: ") {
		t.Errorf("human error %q", stderr)
	}
}
