package metatest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

// uploadTests check meta.Uploads.
var uploadTests = []test{
	{"Uploads/Lifecycle", testUploadLifecycle},
	{"Uploads/Expired", testUploadsExpired},
	{"Uploads/ConcurrentAppends", testUploadConcurrentAppends},
	{"Uploads/DeleteRacesAppend", testUploadDeleteRacesAppend},
	{"Uploads/Count", testUploadsCount},
}

var uploadT0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func newUpload(t *testing.T, u meta.Uploads, id string, at time.Time) {
	t.Helper()
	if err := u.CreateUpload(t.Context(), meta.Upload{ID: id, Repository: "app/web", Started: at, Updated: at}); err != nil {
		t.Fatalf("CreateUpload(%s): %v", id, err)
	}
}

func part(content string) meta.UploadPart {
	return meta.UploadPart{Digest: blobDigest(content), Size: int64(len(content))}
}

func testUploadLifecycle(t *testing.T, s meta.Store) {
	u, ctx := capability[meta.Uploads](t, s), t.Context()
	newUpload(t, u, "u1", uploadT0)
	wantErr(t, "CreateUpload of a taken id", u.CreateUpload(ctx, meta.Upload{ID: "u1", Repository: "x",
		Started: uploadT0, Updated: uploadT0}), meta.ErrConflict)
	got, err := u.GetUpload(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "new upload", got, &meta.Upload{ID: "u1", Repository: "app/web", Started: uploadT0, Updated: uploadT0})
	wantUTC(t, "started", got.Started)

	t1, t2, t3 := uploadT0.Add(time.Second), uploadT0.Add(2*time.Second), uploadT0.Add(3*time.Second)
	steps := []struct {
		at   int64
		p    meta.UploadPart
		now  time.Time
		want error
	}{
		{0, part("hello "), t1, nil},
		{0, part("stale"), t2, meta.ErrUploadMoved}, // a lost race: nothing changes
		{6, part("world"), t2, nil},
		{11, meta.UploadPart{}, t3, nil}, // only refreshes updated
		{12, meta.UploadPart{}, t3, meta.ErrUploadMoved},
	}
	for _, st := range steps {
		wantErr(t, "AppendUpload", u.AppendUpload(ctx, "u1", st.at, st.p, st.now), st.want)
		if st.want == nil && st.p.Size > 0 { // the same append again has lost
			wantErr(t, "AppendUpload again", u.AppendUpload(ctx, "u1", st.at, st.p, st.now), meta.ErrUploadMoved)
		}
	}
	got, err = u.GetUpload(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	want := &meta.Upload{ID: "u1", Repository: "app/web", Started: uploadT0, Updated: t3, Size: 11,
		Parts: []meta.UploadPart{{Seq: 0, Digest: blobDigest("hello "), Size: 6}, {Seq: 1, Digest: blobDigest("world"), Size: 5}}}
	sameJSON(t, "upload after appends", got, want)

	wantErr(t, "AppendUpload of a bad part", u.AppendUpload(ctx, "u1", 11, meta.UploadPart{Digest: "md5:x", Size: 1}, t3), meta.ErrInvalid)
	wantErr(t, "AppendUpload to an unknown upload", u.AppendUpload(ctx, "nope", 0, part("x"), t3), meta.ErrNotFound)
	_, err = u.GetUpload(ctx, "nope")
	wantErr(t, "GetUpload of an unknown upload", err, meta.ErrNotFound)
	for range 2 { // deleting twice is not an error
		if err := u.DeleteUpload(ctx, "u1"); err != nil {
			t.Fatalf("DeleteUpload: %v", err)
		}
	}
	_, err = u.GetUpload(ctx, "u1")
	wantErr(t, "GetUpload of a deleted upload", err, meta.ErrNotFound)
	// The id is free again, with no parts left from before.
	newUpload(t, u, "u1", t3)
	if got, err := u.GetUpload(ctx, "u1"); err != nil || got.Size != 0 || len(got.Parts) != 0 {
		t.Errorf("recreated upload: %+v, %v", got, err)
	}
	if err := u.DeleteUpload(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
}

func testUploadsExpired(t *testing.T, s meta.Store) {
	u, ctx := capability[meta.Uploads](t, s), t.Context()
	for i, id := range []string{"c", "a", "b"} {
		newUpload(t, u, id, uploadT0.Add(time.Duration(i)*time.Minute))
	}
	if err := u.AppendUpload(ctx, "a", 0, part("a0"), uploadT0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	ids := func(before time.Time, limit int) []string {
		t.Helper()
		ups, err := u.ExpiredUploads(ctx, before, limit)
		if err != nil {
			t.Fatalf("ExpiredUploads: %v", err)
		}
		out := []string{}
		for _, up := range ups {
			out = append(out, up.ID)
			if up.ID == "a" && (len(up.Parts) != 1 || up.Parts[0] != (meta.UploadPart{Digest: blobDigest("a0"), Size: 2})) {
				t.Errorf("expired upload a has parts %+v", up.Parts)
			}
		}
		return out
	}
	sameJSON(t, "expired at t0", ids(uploadT0, 0), []string{})
	sameJSON(t, "expired before t0+90s", ids(uploadT0.Add(90*time.Second), 0), []string{"c", "a"})
	sameJSON(t, "expired, limit 1", ids(uploadT0.Add(time.Hour), 1), []string{"c"})
	sameJSON(t, "all expired", ids(uploadT0.Add(time.Hour), 0), []string{"c", "a", "b"})
	for _, id := range []string{"a", "b", "c"} {
		if err := u.DeleteUpload(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	sameJSON(t, "after deleting", ids(uploadT0.Add(time.Hour), 0), []string{})
}

// testUploadConcurrentAppends: of many appends at the same size, one wins.
func testUploadConcurrentAppends(t *testing.T, s meta.Store) {
	u, ctx := capability[meta.Uploads](t, s), t.Context()
	newUpload(t, u, "race", uploadT0)
	const n = 8
	var (
		wg          sync.WaitGroup
		mu          sync.Mutex
		wins, moved int
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := u.AppendUpload(ctx, "race", 0, part(string(rune('a'+i))), uploadT0.Add(time.Second))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, meta.ErrUploadMoved):
				moved++
			default:
				t.Errorf("AppendUpload: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 || moved != n-1 {
		t.Errorf("%d appends won and %d lost, want 1 and %d", wins, moved, n-1)
	}
	got, err := u.GetUpload(ctx, "race")
	if err != nil || got.Size != 1 || len(got.Parts) != 1 {
		t.Errorf("after the race: %+v, %v", got, err)
	}
	if err := u.DeleteUpload(ctx, "race"); err != nil {
		t.Fatal(err)
	}
}

// testUploadDeleteRacesAppend: deleting an upload while a part is appended
// to it succeeds, whichever comes first; the append then finds no upload.
func testUploadDeleteRacesAppend(t *testing.T, s meta.Store) {
	u, ctx := capability[meta.Uploads](t, s), t.Context()
	const n = 150
	for i := range n {
		newUpload(t, u, fmt.Sprintf("del-%03d", i), uploadT0)
	}
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	for i := range n {
		id := fmt.Sprintf("del-%03d", i)
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			err := u.AppendUpload(ctx, id, 0, part(id), uploadT0.Add(time.Second))
			if err != nil && !errors.Is(err, meta.ErrNotFound) && !errors.Is(err, meta.ErrUploadMoved) {
				t.Errorf("AppendUpload(%s) racing a delete: %v", id, err)
			}
		}()
		go func() {
			defer wg.Done()
			<-start
			if err := u.DeleteUpload(ctx, id); err != nil {
				t.Errorf("DeleteUpload(%s) racing an append: %v", id, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		id := fmt.Sprintf("del-%03d", i)
		if _, err := u.GetUpload(ctx, id); !errors.Is(err, meta.ErrNotFound) {
			t.Errorf("GetUpload(%s) after the delete: %v", id, err)
		}
	}
}

func testUploadsCount(t *testing.T, s meta.Store) {
	u, ctx := capability[meta.Uploads](t, s), t.Context()
	c := capability[meta.UploadCounter](t, s)
	for i, repo := range []string{"app", "app/web", "app/web/x", "apple", "other", "app"} {
		at := uploadT0.Add(time.Duration(i) * time.Second)
		if err := u.CreateUpload(ctx, meta.Upload{ID: fmt.Sprint("c", i), Repository: repo, Started: at, Updated: at}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		repo  string
		since time.Duration
		want  int
	}{
		{"app", 0, 4}, {"app", 2 * time.Second, 2}, {"app/web", 0, 2}, {"apple", 0, 1},
		{"ap", 0, 0}, {"nothing", 0, 0}, {"app", time.Hour, 0}, {"a%", 0, 0}, {"app_", 0, 0},
	} {
		n, err := c.CountUploads(ctx, tc.repo, uploadT0.Add(tc.since))
		if err != nil || n != tc.want {
			t.Errorf("CountUploads(%q, t0+%v) = %d, %v; want %d", tc.repo, tc.since, n, err, tc.want)
		}
	}
	if err := u.DeleteUpload(ctx, "c0"); err != nil {
		t.Fatal(err)
	}
	if n, err := c.CountUploads(ctx, "app", uploadT0); err != nil || n != 3 {
		t.Errorf("after a delete: %d, %v; want 3", n, err)
	}
}
