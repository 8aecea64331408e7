package gc_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/gc"
)

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

// TestLockHeartbeat: a run renews the runner lock while it lasts, so a run
// longer than LockTTL (here 16 minutes of the fake clock, in 4-minute steps
// between heartbeats) keeps it; the next run finds it free at once.
func TestLockHeartbeat(t *testing.T) {
	e := newEnv(t)
	d := e.deployment("site", 0, 0)
	e.publish(d, "one", true)
	e.publish(d, "two", true)
	other := func() error {
		c, err := gc.New(gc.Config{Meta: e.meta, Blobs: e.blobs, Now: e.clock.Now,
			Owner: ownerOf("other-host", 1, "x")})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Run(t.Context(), false)
		return err
	}
	busy := make(chan error, 1)
	c, err := gc.New(gc.Config{Meta: e.meta, Blobs: e.blobs, Now: e.clock.Now, Heartbeat: time.Millisecond,
		Changed: func() {
			for range 4 {
				e.clock.Add(4 * time.Minute)
				time.Sleep(50 * time.Millisecond) // many heartbeats
			}
			busy <- other()
		}})
	if err != nil {
		t.Fatal(err)
	}
	if rep := e.run(c, false); len(rep.Collected) != 1 {
		t.Errorf("collected %+v", rep.Collected)
	}
	if err := <-busy; !errors.Is(err, gc.ErrBusy) {
		t.Errorf("another process's run during a long run: %v, want ErrBusy (the heartbeat renews the lock)", err)
	}
	if err := other(); err != nil {
		t.Errorf("a run after the long one: %v", err)
	}
}

// TestLockLost: a run whose lock another process took (the heartbeat finds
// it) stops at once with ErrBusy instead of going on to delete.
func TestLockLost(t *testing.T) {
	e := newEnv(t)
	d := e.deployment("site", 0, 0)
	v1 := e.publish(d, "one", true)
	e.publish(d, "two", true)
	c, err := gc.New(gc.Config{Meta: e.meta, Blobs: e.blobs, Now: e.clock.Now, Heartbeat: time.Millisecond,
		Drain: time.Minute, Changed: func() {
			// Another process takes the lock (a heartbeat between the drop
			// and the take puts it back: try again).
			for i := 0; ; i++ {
				hs, err := e.meta.Holders(t.Context())
				if err != nil || i == 1000 {
					t.Errorf("the lock could not be taken: %v", err)
					return
				}
				for _, h := range hs {
					e.meta.DropHolder(t.Context(), h)
				}
				if ok, _ := e.meta.AcquireLock(t.Context(), gc.LockName, "thief", time.Hour); ok {
					return
				}
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = c.Run(t.Context(), false)
	if !errors.Is(err, gc.ErrBusy) {
		t.Errorf("Run after losing the lock: %v, want ErrBusy", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the run went on for %v after losing its lock (drain 1m)", took)
	}
	if !e.hasBlob(v1.ArtifactSHA256) {
		t.Error("the run deleted bytes after losing its lock")
	}
}

// TestDeadOwnerReleased: the lock of a process that died (kill -9: no
// release, a heartbeat expiring 30 s later) is taken over at once by a
// process of the same host, when the dead owner's PID is gone or is the new
// process's own PID under another nonce (a restart in a container). A live
// process's lock, or one of another host, waits for its heartbeat to expire.
func TestDeadOwnerReleased(t *testing.T) {
	self := os.Getpid()
	for _, tc := range []struct {
		name, holder string
		free         bool
	}{
		{"dead pid", ownerOf("h1", deadPID(t), "old") + "/gc-1", true},
		{"own pid, earlier instance", ownerOf("h1", self, "old") + "/gc-1", true},
		{"live pid", ownerOf("h1", os.Getppid(), "old") + "/gc-1", false},
		{"other host", ownerOf("h2", deadPID(t), "old") + "/gc-1", false},
		{"not an owner", "gc-0123", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			if ok, err := e.meta.AcquireLock(t.Context(), gc.LockName, tc.holder, gc.LockTTL); !ok || err != nil {
				t.Fatal(ok, err)
			}
			c, err := gc.New(gc.Config{Meta: e.meta, Blobs: e.blobs, Now: e.clock.Now, Owner: ownerOf("h1", self, "new")})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Run(t.Context(), false)
			if tc.free && err != nil {
				t.Fatalf("Run with the lock of a dead process: %v, want it taken over", err)
			}
			if !tc.free {
				if !errors.Is(err, gc.ErrBusy) {
					t.Fatalf("Run with the lock of %s: %v, want ErrBusy", tc.holder, err)
				}
				e.clock.Add(gc.LockTTL + time.Second) // no heartbeat came
				if _, err := c.Run(t.Context(), false); err != nil {
					t.Errorf("Run after the heartbeat expired: %v", err)
				}
			}
		})
	}
}
