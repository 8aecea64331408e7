package main

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/api"
	"github.com/cairnhq/cairn/internal/blob/fs"
	"github.com/cairnhq/cairn/internal/fakeclock"
	"github.com/cairnhq/cairn/internal/meta/sqlite"
	"github.com/cairnhq/cairn/internal/publish"
	"github.com/cairnhq/cairn/internal/release"
)

// realAPI serves the real v1 API on a SQLite store with the bootstrap
// admin token admin, its clock stopped at 2029-01-01.
func realAPI(t *testing.T, admin string) *httptest.Server {
	t.Helper()
	dir := t.TempDir()
	store, err := sqlite.Open(filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	blobs, err := fs.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	pub := &publish.Publisher{Meta: store, Blobs: blobs, StageDir: t.TempDir(),
		Limits: release.Limits{MaxFiles: 100, MaxBytes: 1 << 20}}
	srv := httptest.NewServer(api.New(api.Config{Meta: store, Blobs: blobs, Publisher: pub, Token: admin,
		Now: fakeclock.New(time.Date(2029, 1, 1, 0, 0, 0, 0, time.UTC)).Now}))
	t.Cleanup(srv.Close)
	return srv
}

// TestTokenVerbs: create (human and --json), ls (without secrets), the
// new token at work, revoke, and the errors of each verb.
func TestTokenVerbs(t *testing.T) {
	admin := "admin-token-0123456789abcdef0123456789"
	srv := realAPI(t, admin)
	as := func(tok string, args ...string) (string, string, int) {
		return cli(t, nil, append(args, "--api", srv.URL, "--token", tok)...)
	}
	stdout, stderr, code := as(admin, "token", "create", "--scope", "deploy:web", "--scope", "pull:web", "--expires", "30d", "--name", "ci web")
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[0], "created token tok_") ||
		!strings.Contains(lines[0], "(deploy:web pull:web)") || !strings.HasPrefix(lines[1], "cairn_") {
		t.Fatalf("create: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	secret := lines[1]

	stdout, stderr, code = as(admin, "token", "create", "--scope", "read", "--expires", "2038-01-02T03:04:05Z", "--json")
	var created struct {
		ID        string    `json:"id"`
		Secret    string    `json:"secret"`
		Scopes    []string  `json:"scopes"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if code != 0 || json.Unmarshal([]byte(stdout), &created) != nil || created.Secret == "" ||
		!created.ExpiresAt.Equal(time.Date(2038, 1, 2, 3, 4, 5, 0, time.UTC)) || created.Scopes[0] != "read" {
		t.Fatalf("create --json: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	stdout, _, code = as(admin, "token", "ls")
	if code != 0 || !strings.Contains(stdout, "ci web") || !strings.Contains(stdout, "deploy:web,pull:web") ||
		!strings.Contains(stdout, created.ID) || strings.Contains(stdout, secret) {
		t.Fatalf("ls: exit %d, stdout %q", code, stdout)
	}
	stdout, _, code = as(admin, "token", "ls", "--json")
	var list []map[string]any
	if code != 0 || json.Unmarshal([]byte(stdout), &list) != nil || len(list) != 2 || strings.Contains(stdout, "secret") ||
		strings.Contains(stdout, created.Secret) {
		t.Fatalf("ls --json: exit %d, stdout %q", code, stdout)
	}

	// the read token lists deployments but may not manage tokens
	if _, stderr, code := as(created.Secret, "token", "ls"); code != 1 ||
		!strings.HasPrefix(stderr, "cairn: ") || !strings.Contains(stderr, "403") || !strings.Contains(stderr, "admin") {
		t.Errorf("ls with a read token: exit %d, stderr %q", code, stderr)
	}
	stdout, stderr, code = as(admin, "token", "revoke", created.ID, "--json")
	if code != 0 || !strings.Contains(stdout, `"revoked_at": "`) {
		t.Fatalf("revoke: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if _, stderr, code := as(created.Secret, "versions", "web"); code != 1 || !strings.Contains(stderr, "401") {
		t.Errorf("revoked token: exit %d, stderr %q", code, stderr)
	}
	stdout, _, _ = as(admin, "token", "ls")
	if !strings.Contains(stdout, "revoked") {
		t.Errorf("ls after revoke: %q", stdout)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"token", "create"}, "cairn: --scope: at least one is needed"},
		{[]string{"token", "create", "--scope", "deploy:Web"}, `cairn: scope "deploy:Web": "Web" is not a deployment name`},
		{[]string{"token", "create", "--scope", "read", "--expires", "soon"}, `cairn: --expires: "soon" is neither a duration`},
		{[]string{"token", "create", "--scope", "read", "--expires", "0d"}, `cairn: --expires: "0d": days must be`},
		{[]string{"token", "create", "--scope", "read", "--expires", "-1h"}, `cairn: --expires: "-1h": the duration must be positive`},
		{[]string{"token", "revoke", "tok_nope"}, `cairn: token "tok_nope" not found (404)`},
		{[]string{"token", "revoke"}, "cairn: usage: cairn token revoke ID"},
	} {
		stdout, stderr, code := as(admin, c.args...)
		if code != 1 || stdout != "" || !strings.HasPrefix(stderr, c.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %q", c.args, code, stdout, stderr, c.want)
		}
	}
}

func FuzzParseExpires(f *testing.F) {
	for _, s := range []string{"720h", "30d", "2030-01-02T15:04:05Z", "0d", "-1h", "d", "1.5d", "9999999999d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		in, at, err := parseExpires(s)
		if err != nil {
			return
		}
		if (in == "") == (at == nil) {
			t.Fatalf("parseExpires(%q) = %q, %v: want exactly one", s, in, at)
		}
		if in != "" {
			if d, err := time.ParseDuration(in); err != nil || d <= 0 {
				t.Fatalf("parseExpires(%q) = %q, not a positive duration", s, in)
			}
		}
	})
}

// TestPublishWithDeployToken: a deploy token publishes its deployment and
// repoints a domain of it that exists (it may not add one: the API's 403,
// as one line, before anything is published).
func TestPublishWithDeployToken(t *testing.T) {
	admin := "admin-token-0123456789abcdef0123456789"
	srv := realAPI(t, admin)
	as := func(tok string, args ...string) (string, string, int) {
		return cli(t, nil, append(args, "--api", srv.URL, "--token", tok)...)
	}
	site := t.TempDir()
	if err := os.WriteFile(filepath.Join(site, "index.html"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := as(admin, "publish", site, "--deployment", "web", "--domain", "www.web.test"); code != 0 {
		t.Fatalf("publish as admin: %d %s", code, stderr)
	}
	stdout, stderr, code := as(admin, "token", "create", "--scope", "deploy:web", "--json")
	var tok struct{ Secret string }
	if code != 0 || json.Unmarshal([]byte(stdout), &tok) != nil {
		t.Fatalf("create: %d %s %s", code, stdout, stderr)
	}
	if stdout, stderr, code := as(tok.Secret, "publish", site, "--deployment", "web", "--domain", "www.web.test", "--no-activate"); code != 0 ||
		!strings.Contains(stdout, "domain www.web.test → web (pinned to v2)") {
		t.Fatalf("publish --domain (existing) as deploy:web: %d %q %q", code, stdout, stderr)
	}
	// A domain it may not look up is refused before anything is sent.
	_, stderr, code = as(tok.Secret, "publish", site, "--deployment", "web", "--domain", "new.web.test")
	if code != 1 || !strings.Contains(stderr, "domain new.web.test: token tok_") || !strings.Contains(stderr, "(403); nothing was published") ||
		strings.Count(stderr, "\n") != 1 {
		t.Errorf("publish --domain (new) as deploy:web: %d %q", code, stderr)
	}
	if stdout, _, _ := as(admin, "versions", "web", "--json"); strings.Count(stdout, `"version_number"`) != 2 {
		t.Errorf("a refused publish made a version: %s", stdout)
	}
	if _, stderr, code := as(tok.Secret, "publish", site, "--deployment", "other"); code != 1 || !strings.Contains(stderr, "403") {
		t.Errorf("publish to another deployment as deploy:web: %d %q", code, stderr)
	}
}
