package metatest

import (
	"fmt"
	"testing"

	"github.com/cairnhq/cairn/internal/meta"
)

// contentTests are the conformance tests of meta.ContentIndex (RunAll).
var contentTests = []test{
	{"Contents/IndexFind", testContentsIndexFind},
	{"Contents/Invalid", testContentsInvalid},
	{"Contents/Collected", testContentsCollected},
	{"Contents/Many", testContentsMany},
}

func contentIndex(t *testing.T, s meta.Store) meta.ContentIndex {
	return capability[meta.ContentIndex](t, s)
}

func content(rel, body string, off int64, shared bool) meta.Content {
	c := meta.Content{SHA256: sha(body), ReleaseSHA256: rel, Size: int64(len(body)), FrameOffset: off, FrameLength: 100, Shared: shared}
	if shared {
		c.InFrame = 512
	}
	return c
}

// testContentsIndexFind: recorded contents are found, the smallest release
// first; recording again changes nothing; unknown ones are absent.
func testContentsIndexFind(t *testing.T, s meta.Store) {
	ctx := t.Context()
	ci := contentIndex(t, s)
	d := newDeployment(t, s, "site")
	v1 := publish(t, s, d.ID, "one", true)
	v2 := publish(t, s, d.ID, "two", true)
	a1, b1 := content(v1.ArtifactSHA256, "a", 0, true), content(v1.ArtifactSHA256, "b", 100, false)
	a2 := content(v2.ArtifactSHA256, "a", 7, false)
	for range 2 {
		if err := ci.IndexContents(ctx, v1.ArtifactSHA256, []meta.Content{a1, b1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := ci.IndexContents(ctx, v2.ArtifactSHA256, []meta.Content{a2}); err != nil {
		t.Fatal(err)
	}
	got, err := ci.FindContents(ctx, []string{sha("a"), sha("b"), sha("c")})
	if err != nil {
		t.Fatal(err)
	}
	wantA := a1
	if v2.ArtifactSHA256 < v1.ArtifactSHA256 {
		wantA = a2
	}
	if len(got) != 2 || got[sha("a")] != wantA || got[sha("b")] != b1 {
		t.Errorf("FindContents = %+v, want a (%+v) and b (%+v)", got, wantA, b1)
	}
	if got, err := ci.FindContents(ctx, nil); err != nil || len(got) != 0 {
		t.Errorf("FindContents(nil) = %v, %v", got, err)
	}
	err = ci.IndexContents(ctx, sha("no such release"), []meta.Content{content(sha("no such release"), "a", 0, false)})
	wantErr(t, "index an unknown release", err, meta.ErrNotFound)
}

// testContentsInvalid: malformed rows are refused and nothing is stored.
func testContentsInvalid(t *testing.T, s meta.Store) {
	ctx := t.Context()
	ci := contentIndex(t, s)
	d := newDeployment(t, s, "site")
	rel := publish(t, s, d.ID, "one", true).ArtifactSHA256
	good := content(rel, "a", 0, false)
	for name, c := range map[string]meta.Content{
		"short sha":     {SHA256: "abc", ReleaseSHA256: rel},
		"other release": content(sha("x"), "b", 0, false),
		"negative size": {SHA256: sha("c"), ReleaseSHA256: rel, Size: -1},
		"negative off":  {SHA256: sha("c"), ReleaseSHA256: rel, FrameOffset: -1},
	} {
		err := ci.IndexContents(ctx, rel, []meta.Content{good, c})
		wantErr(t, name, err, meta.ErrInvalid)
	}
	if got, _ := ci.FindContents(ctx, []string{sha("a")}); len(got) != 0 {
		t.Errorf("a refused batch stored %+v", got)
	}
}

// testContentsCollected: the GC keeps the index true: a release being
// collected is not offered, a collected one has no rows left.
func testContentsCollected(t *testing.T, s meta.Store) {
	ctx := t.Context()
	ci := contentIndex(t, s)
	g := capability[meta.GC](t, s)
	d := newDeployment(t, s, "site")
	v1 := publish(t, s, d.ID, "one", true)
	publish(t, s, d.ID, "two", true) // v1 is no longer active
	if err := ci.IndexContents(ctx, v1.ArtifactSHA256, []meta.Content{content(v1.ArtifactSHA256, "a", 0, false)}); err != nil {
		t.Fatal(err)
	}
	now := getVersion(t, s, v1.ID).CreatedAt.Add(31 * day)
	if _, err := g.MarkCollecting(ctx, []string{v1.ArtifactSHA256}, now); err != nil {
		t.Fatal(err)
	}
	if got, err := ci.FindContents(ctx, []string{sha("a")}); err != nil || len(got) != 0 {
		t.Errorf("FindContents while collecting = %+v, %v; want nothing", got, err)
	}
	if c := collect(t, g, v1.ArtifactSHA256, now, now, 0); c == nil || c.Root != nil {
		t.Fatalf("collect = %+v", c)
	}
	if got, err := ci.FindContents(ctx, []string{sha("a")}); err != nil || len(got) != 0 {
		t.Errorf("FindContents after collection = %+v, %v; want nothing", got, err)
	}
}

// testContentsMany: more rows than one statement holds.
func testContentsMany(t *testing.T, s meta.Store) {
	ctx := t.Context()
	ci := contentIndex(t, s)
	d := newDeployment(t, s, "site")
	rel := publish(t, s, d.ID, "one", true).ArtifactSHA256
	var cs []meta.Content
	var shas []string
	for i := range 1000 {
		c := content(rel, fmt.Sprint("f", i), int64(i), i%2 == 0)
		cs = append(cs, c)
		shas = append(shas, c.SHA256)
	}
	if err := ci.IndexContents(ctx, rel, cs); err != nil {
		t.Fatal(err)
	}
	got, err := ci.FindContents(ctx, append(shas, sha("none")))
	if err != nil || len(got) != 1000 {
		t.Fatalf("FindContents found %d, %v; want 1000", len(got), err)
	}
	for _, c := range cs {
		if got[c.SHA256] != c {
			t.Errorf("FindContents(%s) = %+v, want %+v", c.SHA256, got[c.SHA256], c)
			break
		}
	}
}
