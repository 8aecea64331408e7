package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"

	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/meta/migrations"
	"github.com/cairnhq/cairn/internal/server"
)

// cairnCLI runs the real binary against e's API and returns its output and
// exit code.
func (e *env) cairnCLI(args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	c := exec.Command(cairnBinary(e.t), append(args, "--api", e.api, "--token", e.token)...)
	var out, errb strings.Builder
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("cairn %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), code
}

// rawDB runs SQL statements on the server's metadata database while it
// runs, as someone with access to it (not through cairn) would: the SQLite
// file in the data dir, or the test's PostgreSQL schema.
type rawDB func(query string, args ...any)

func openRawDB(t *testing.T, e *env, database string) rawDB {
	if database != "" {
		conn, err := pgx.Connect(context.Background(), database)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) })
		return func(q string, args ...any) {
			t.Helper()
			if _, err := conn.Exec(context.Background(), migrations.Postgres.Rebind(q), args...); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(e.data, "cairn.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// TestAuditChainTamper is the acceptance test of the hash-chained audit
// log: after publishes, an activation and domain changes, `cairn audit
// verify` passes; an edit of one event row straight in the database makes it
// report exactly that event as the break; deleting the newest event is
// caught by --head with the head noted before.
func TestAuditChainTamper(t *testing.T) {
	var database string
	e := start(t, func(c *server.Config) { database = c.Database })
	e.publish("chain", site("one"))
	e.publish("chain", site("two"))
	e.do("POST", "/v1/deployments/chain/activate", e.jsonBody(map[string]any{"version_number": 1}), nil)
	e.do("POST", "/v1/domains", e.jsonBody(map[string]any{"hostname": "www.chain.test", "deployment": "chain"}), nil)
	if code, _ := e.do("PATCH", "/v1/domains/www.chain.test", e.jsonBody(map[string]any{"version_number": 2}), nil); code != 200 {
		t.Fatalf("repoint: %d", code)
	}
	e.publish("other", site("three"))

	out, stderr, code := e.cairnCLI("audit", "verify")
	if code != 0 || !strings.HasPrefix(out, "audit log verified: ") {
		t.Fatalf("audit verify: exit %d: %s%s", code, out, stderr)
	}
	var page struct {
		Events []meta.Event `json:"events"`
		Head   string       `json:"head"`
	}
	e.do("GET", "/v1/events", nil, &page)
	if want := fmt.Sprintf("audit log verified: %d events, head %s\n", len(page.Events), page.Head); out != want {
		t.Errorf("audit verify printed %q, want %q", out, want)
	}
	var target meta.Event
	for _, ev := range page.Events {
		if ev.Action == meta.ActionDomainAdd {
			target = ev
		}
	}
	if target.ID == 0 || target.ID == page.Events[len(page.Events)-1].ID {
		t.Fatalf("no domain.add event inside the log: %+v", page.Events)
	}

	db := openRawDB(t, e, database)
	db(`UPDATE events SET actor = 'mallory' WHERE id = ?`, target.ID)
	out, stderr, code = e.cairnCLI("audit", "verify")
	t.Logf("after the edit: %s", stderr)
	want := fmt.Sprintf("cairn: audit log broken at event %d (domain.add at ", target.ID)
	if code != 2 || out != "" || !strings.HasPrefix(stderr, want) || !strings.Contains(stderr, "does not match its contents") {
		t.Errorf("after editing event %d: exit %d, stdout %q, stderr %q; want exit 2 and %q…", target.ID, code, out, stderr, want)
	}
	var rep struct {
		OK    bool `json:"ok"`
		Break struct {
			ID     int64  `json:"id"`
			Action string `json:"action"`
		} `json:"break"`
	}
	out, _, code = e.cairnCLI("audit", "verify", "--json")
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 2 || rep.OK || rep.Break.ID != target.ID ||
		rep.Break.Action != meta.ActionDomainAdd {
		t.Errorf("audit verify --json: exit %d, %+v (%v) from %s", code, rep, err, out)
	}

	// Put it back: the chain holds again. Then cut off the newest event.
	db(`UPDATE events SET actor = ? WHERE id = ?`, target.Actor, target.ID)
	if out, stderr, code := e.cairnCLI("audit", "verify", "--head", page.Head); code != 0 {
		t.Fatalf("restored: exit %d: %s%s", code, out, stderr)
	}
	db(`DELETE FROM events WHERE id = ?`, page.Events[len(page.Events)-1].ID)
	if _, stderr, code := e.cairnCLI("audit", "verify", "--head", page.Head); code != 2 ||
		!strings.Contains(stderr, "recorded head is not in the audit log") {
		t.Errorf("newest event deleted, --head: exit %d: %s", code, stderr)
	}
}

// TestVerifyRelease: `cairn verify` re-reads a release and checks it; a
// blob corrupted on disk (the embedded default's file store) fails it.
func TestVerifyRelease(t *testing.T) {
	e := start(t)
	v := e.publish("checked", site("one"))
	out, stderr, code := e.cairnCLI("verify", "checked", "1")
	if code != 0 || !strings.HasPrefix(out, "checked v1 verified\n") || !strings.Contains(out, "every file checked") {
		t.Fatalf("verify: exit %d: %s%s", code, out, stderr)
	}
	if e.blobs != "" {
		return // the bytes are in S3: corrupting them is the blob tests' business
	}
	sha := v["artifact_sha256"].(string)
	path := filepath.Join(e.data, "blobs", "sha256", sha[:2], sha)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/3] ^= 0xff
	os.Chmod(path, 0o644)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, code = e.cairnCLI("verify", "checked", "1")
	t.Logf("corrupt blob: %s", stderr)
	if code != 2 || out != "" || !strings.Contains(stderr, "verification failed") || !strings.Contains(stderr, sha) {
		t.Errorf("corrupt blob: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
}

// TestVerifyOCIRelease: for an oci version, `cairn verify` checks that the
// stored manifest hashes to the version's digest.
func TestVerifyOCIRelease(t *testing.T) {
	e := start(t)
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(strings.TrimPrefix(e.api, "http://")+"/img:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "ci", Password: e.token})); err != nil {
		t.Fatalf("push: %v", err)
	}
	d, _ := img.Digest()
	out, stderr, code := e.cairnCLI("verify", "img", "1", "--json")
	var rep struct {
		Kind   string `json:"kind"`
		SHA256 string `json:"sha256"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 || rep.Kind != meta.KindOCI || rep.SHA256 != d.Hex {
		t.Errorf("verify oci: exit %d, %+v (%v): %s%s", code, rep, err, out, stderr)
	}
}
