package publish

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/fakeclock"
)

// TestSessionsExpire: an abandoned incremental publish expires after its
// TTL and leaves nothing behind; one in use does not expire.
func TestSessionsExpire(t *testing.T) {
	p, dep := newPublisher(t, 1)
	clock := fakeclock.New(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	s := &Sessions{TTL: time.Hour, Now: clock.Now}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("<h1>hi</h1>"), 0o644)
	start := func() string {
		inc, err := p.StartIncremental(t.Context(), manifestOf(t, dir))
		if err != nil {
			t.Fatal(err)
		}
		if err := inc.PutContent(t.Context(), inc.Missing[0], bytes.NewReader([]byte("<h1>hi</h1>"))); err != nil {
			t.Fatal(err)
		}
		return s.Add(dep.ID, inc)
	}
	idle, held := start(), start()
	_, release, err := s.Get(held, dep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(idle, "other"); !errors.Is(err, ErrPublishUnknown) {
		t.Errorf("Get under another deployment: %v", err)
	}
	clock.Add(59 * time.Minute)
	if n := s.Sweep(); n != 0 {
		t.Errorf("swept %d before the TTL", n)
	}
	clock.Add(2 * time.Minute)
	if n := s.Sweep(); n != 1 {
		t.Errorf("swept %d, want the idle one", n)
	}
	if _, _, err := s.Get(idle, dep.ID); !errors.Is(err, ErrPublishUnknown) {
		t.Errorf("Get of an expired publish: %v", err)
	}
	release()
	clock.Add(61 * time.Minute)
	s.Sweep()
	if left, _ := os.ReadDir(p.StageDir); len(left) != 0 || s.Len() != 0 {
		t.Errorf("after expiry: %d sessions, staging holds %d entries", s.Len(), len(left))
	}
}
