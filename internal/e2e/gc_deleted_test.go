package e2e

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/gc"
)

// TestGCCollectsDeletedDeployment: `cairn deployment delete` leaves the
// releases to GC on the usual rules, through the real CLI and a collection
// with no grace. Of a deleted deployment with retention 0 a run collects
// every release, the one that was active until the delete too (a run
// before the delete did not), and the version records stay, "collected";
// the retention window of one with the default 30 days counts from the
// delete and keeps its release; keep_versions keeps the newest archived.
func TestGCCollectsDeletedDeployment(t *testing.T) {
	e := start(t, gcNow)
	dir := t.TempDir()
	cli := func(args ...string) string {
		t.Helper()
		out, stderr, code := e.runCLI(dir, args...)
		if code != 0 {
			t.Fatalf("cairn %s: exit %d\n%s%s", strings.Join(args, " "), code, out, stderr)
		}
		return out
	}
	// publish publishes a tree of its own (its own release) as a new
	// version of dep and returns the release's sha256.
	publish := func(dep, tag string) string {
		t.Helper()
		var v struct {
			SHA256 string `json:"artifact_sha256"`
		}
		if err := json.Unmarshal([]byte(cli("publish", siteDir(t, site(dep+"-"+tag)), "--deployment", dep, "--json")), &v); err != nil {
			t.Fatal(err)
		}
		return v.SHA256
	}
	collect := func() gc.Report {
		t.Helper()
		var rep gc.Report
		if err := json.Unmarshal([]byte(cli("gc", "--json")), &rep); err != nil {
			t.Fatal(err)
		}
		return rep
	}
	collected := func(rep gc.Report) string {
		var shas []string
		for _, c := range rep.Collected {
			if !c.Deleted || c.BytesFreed <= 0 {
				t.Errorf("collected %s: deleted %v, %d bytes freed", c.SHA256[:12], c.Deleted, c.BytesFreed)
			}
			shas = append(shas, c.SHA256)
		}
		sort.Strings(shas)
		return strings.Join(shas, ",")
	}
	sorted := func(shas ...string) string {
		sort.Strings(shas)
		return strings.Join(shas, ",")
	}

	// gone: retention 0, keep_versions 0, a domain; v2 active.
	gone1 := publish("gone", "one")
	cli("deployment", "set", "gone", "--retention-days", "0", "--keep-versions", "0")
	gone2 := publish("gone", "two")
	cli("domain", "add", "www.gone.test", "--deployment", "gone")
	// retained: the default retention (30 days).
	retained := publish("retained", "one")
	// keep: retention 0, keep_versions 1; v2 active.
	keep1 := publish("keep", "one")
	cli("deployment", "set", "keep", "--retention-days", "0", "--keep-versions", "1")
	keep2 := publish("keep", "two")

	// Before the delete only gone's archived v1 goes.
	if got := collected(collect()); got != gone1 {
		t.Fatalf("before the delete: collected %s, want gone v1 %s", got, gone1)
	}
	if resp, b := e.get("gone.localhost", "/"); resp.StatusCode != 200 || string(b) != "<h1>gone-two</h1>" {
		t.Fatalf("gone before the delete: %d %q", resp.StatusCode, b)
	}

	if _, stderr, code := e.runCLI(dir, "deployment", "delete", "gone"); code == 0 || !strings.Contains(stderr, "www.gone.test") {
		t.Fatalf("delete with a domain: exit %d, %q; want a refusal naming the domain", code, stderr)
	}
	deleted := time.Now()
	cli("deployment", "delete", "gone", "--force")
	cli("deployment", "delete", "retained")
	cli("deployment", "delete", "keep")

	rep := collect()
	if got, want := collected(rep), sorted(gone2, keep1); got != want {
		t.Errorf("after the delete: collected %s, want gone v2 and keep v1 (%s)", got, want)
	}
	kept := map[string]gc.Kept{}
	for _, k := range rep.Kept {
		kept[k.SHA256] = k
	}
	if k := kept[retained]; k.Reason != "retention" || k.Until == nil || k.Until.Before(deleted.Add(30*24*time.Hour-time.Minute)) {
		t.Errorf("retained's release: kept %+v, want by retention until 30 days after the delete", k)
	}
	if k := kept[keep2]; k.Reason != "keep_versions" || k.VersionNumber != 2 {
		t.Errorf("keep's v2: kept %+v, want by keep_versions", k)
	}

	// The records stay for audit: gone's versions are there, collected.
	var vs []struct {
		VersionNumber int64  `json:"version_number"`
		Status        string `json:"status"`
		SHA256        string `json:"artifact_sha256"`
	}
	if err := json.Unmarshal([]byte(cli("versions", "gone", "--json")), &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 {
		t.Fatalf("gone's versions after GC: %+v", vs)
	}
	for _, v := range vs {
		if v.Status != "collected" {
			t.Errorf("gone v%d after GC: %s, want collected", v.VersionNumber, v.Status)
		}
	}
	if !strings.Contains(cli("deployments", "--deleted"), "gone") {
		t.Error("deployments --deleted does not list gone")
	}
	if code, _ := e.do("GET", "/v1/releases/"+gone2+"/artifact", nil, nil); code != 410 {
		t.Errorf("the artifact of gone's collected v2: %d, want 410", code)
	}
	if resp, _ := e.get("www.gone.test", "/"); resp.StatusCode == 200 {
		t.Errorf("www.gone.test after a forced delete: %d", resp.StatusCode)
	}
}
