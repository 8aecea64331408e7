package lease_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/fakeclock"
	"github.com/cairnhq/cairn/internal/lease"
	"github.com/cairnhq/cairn/internal/meta/sqlite"
)

// env is real SQLite metadata on a fake clock.
type env struct {
	clock *fakeclock.Clock
	meta  *sqlite.Store
}

func newEnv(t *testing.T) *env {
	t.Helper()
	c := fakeclock.New(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	m, err := sqlite.Open(filepath.Join(t.TempDir(), "meta.db"), sqlite.WithClock(c.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return &env{clock: c, meta: m}
}

// ownerOf returns an owner id of host with pid.
func ownerOf(host string, pid int, nonce string) string {
	return fmt.Sprintf("%s/%d/%s", host, pid, nonce)
}

// deadPID returns the PID of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	c := exec.Command("true")
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	return c.Process.Pid
}

// TestReleaseDead: at start a process drops the leases and deletion claims
// of a dead instance of its host too, and keeps the others'.
func TestReleaseDead(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	dead := ownerOf("h1", deadPID(t), "old")
	sha := func(c byte) string { return fmt.Sprintf("%064x", c) }
	for holder, s := range map[string]string{dead + "/publish-1": sha(1), "upload-0123": sha(2),
		ownerOf("h2", 1, "x") + "/publish-2": sha(3)} {
		if _, err := e.meta.HoldRelease(ctx, s, holder, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := e.meta.ClaimOrphan(ctx, sha(4), dead+"/gc-1", e.clock.Now(), time.Hour); !ok || err != nil {
		t.Fatal(ok, err)
	}
	n, err := lease.ReleaseDead(ctx, e.meta, ownerOf("h1", os.Getpid(), "new"))
	if err != nil || n != 2 {
		t.Errorf("ReleaseDead = %d, %v; want the 2 holders of the dead instance", n, err)
	}
	hs, err := e.meta.Holders(ctx)
	if err != nil || len(hs) != 2 {
		t.Errorf("holders left: %v, %v; want the upload session's and the other host's", hs, err)
	}
}
