package sched

import (
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

func (w *world) wake(v *meta.Version) {
	w.t.Helper()
	if err := w.store.Wake(w.t.Context(), meta.WakeRef{DeploymentID: w.dep.ID, VersionID: v.ID}); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) touch(v *meta.Version) {
	w.t.Helper()
	if err := w.store.TouchWakes(w.t.Context(), []meta.WakeRef{{DeploymentID: w.dep.ID, VersionID: v.ID}}); err != nil {
		w.t.Fatal(err)
	}
}

// later moves the clock by d; the hosts heartbeat (or they would be lost).
func (w *world) later(d time.Duration, hosts ...string) {
	w.clock.Add(d)
	for _, h := range hosts {
		w.heartbeat(h)
	}
}

func (w *world) ofVersion(v *meta.Version) int {
	return count(w.instances(), func(in meta.Instance) bool { return in.VersionID == v.ID })
}

// TestAutostopActive: a deployment with autostop runs no instance until a
// wake; then its replicas are placed; they stay while requests come
// (TouchWakes) and are removed once the last request is autostop old.
func TestAutostopActive(t *testing.T) {
	w := newWorld(t, "h1", "h2")
	if _, err := w.store.SetDesired(t.Context(), w.dep.ID, meta.Desired{Replicas: 2, Autostop: "1m"}, "test"); err != nil {
		t.Fatal(err)
	}
	w.run()
	if n := len(w.instances()); n != 0 {
		t.Fatalf("asleep: %d instances, want 0", n)
	}
	w.wake(w.vers[0])
	w.run()
	if n := w.ofVersion(w.vers[0]); n != 2 {
		t.Fatalf("after a wake: %d instances of the active version, want 2", n)
	}
	w.heartbeat("h1")
	w.heartbeat("h2")
	w.later(50*time.Second, "h1", "h2")
	w.touch(w.vers[0]) // a request 50 s after the wake
	w.later(50*time.Second, "h1", "h2")
	w.run()
	if n := w.ofVersion(w.vers[0]); n != 2 {
		t.Fatalf("50 s after the last request: %d instances, want 2", n)
	}
	w.later(10*time.Second, "h1", "h2")
	w.run()
	if n := len(w.instances()); n != 0 {
		t.Fatalf("60 s after the last request: %d instances, want 0 (autostop 1m)", n)
	}
	// Woken again: placed again.
	w.wake(w.vers[0])
	w.run()
	if n := w.ofVersion(w.vers[0]); n != 2 {
		t.Fatalf("after a second wake: %d instances, want 2", n)
	}
}

// TestPreviewWake: an old (non-active) version gets one instance when a
// request woke it, beside the active version's replicas, and loses it
// after PreviewIdle without a request; a deployment's autostop overrides
// PreviewIdle.
func TestPreviewWake(t *testing.T) {
	w := newWorld(t, "h1")
	w.s.PreviewIdle = 5 * time.Minute
	if _, err := w.store.SetReplicas(t.Context(), w.dep.ID, 1, "test"); err != nil {
		t.Fatal(err)
	}
	old := w.vers[1] // never active: vers[0] is
	w.run()
	if w.ofVersion(w.vers[0]) != 1 || w.ofVersion(old) != 0 {
		t.Fatalf("before a wake: %+v", w.instances())
	}
	w.wake(old)
	w.run()
	if w.ofVersion(w.vers[0]) != 1 || w.ofVersion(old) != 1 {
		t.Fatalf("after the preview's wake: %+v", w.instances())
	}
	w.heartbeat("h1")
	w.later(4*time.Minute, "h1")
	w.run()
	if w.ofVersion(old) != 1 {
		t.Fatalf("4 min after the wake: %d instances of the preview, want 1", w.ofVersion(old))
	}
	w.later(time.Minute, "h1")
	w.run()
	if w.ofVersion(w.vers[0]) != 1 || w.ofVersion(old) != 0 {
		t.Fatalf("5 min after the wake: %+v; want the active version's only", w.instances())
	}

	// With autostop 30s, the preview's idle time is 30 s, and the active
	// version (never asked for) sleeps too.
	if _, err := w.store.SetDesired(t.Context(), w.dep.ID, meta.Desired{Replicas: 1, Autostop: "30s"}, "test"); err != nil {
		t.Fatal(err)
	}
	w.wake(old)
	w.run()
	if w.ofVersion(w.vers[0]) != 0 || w.ofVersion(old) != 1 {
		t.Fatalf("autostop 30s, preview woken: %+v", w.instances())
	}
	w.later(30*time.Second, "h1")
	w.run()
	if n := len(w.instances()); n != 0 {
		t.Fatalf("30 s later: %d instances, want 0", n)
	}
}

// TestAutostopRollout: a rollout of an asleep autostop deployment wakes
// it (the target's instances are placed and the switch happens); the new
// active version then stays for autostop after the switch.
func TestAutostopRollout(t *testing.T) {
	w := newWorld(t, "h1")
	if _, err := w.store.SetDesired(t.Context(), w.dep.ID, meta.Desired{Replicas: 1, Autostop: "1m"}, "test"); err != nil {
		t.Fatal(err)
	}
	w.run()
	if _, err := w.store.StartRollout(t.Context(), meta.NewRollout{DeploymentID: w.dep.ID, VersionNumber: w.vers[1].VersionNumber,
		Action: meta.ActionActivate, Deadline: w.clock.Now().Add(time.Minute), Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	w.run()
	if w.ofVersion(w.vers[1]) != 1 {
		t.Fatalf("rollout of an asleep deployment: %+v", w.instances())
	}
	w.heartbeat("h1")
	w.run()
	if w.active() != w.vers[1].ID {
		t.Fatalf("active %s after the target got healthy", w.active())
	}
	w.later(59*time.Second, "h1")
	w.run()
	if w.ofVersion(w.vers[1]) != 1 {
		t.Fatalf("59 s after the switch: %+v", w.instances())
	}
	w.later(time.Second, "h1")
	w.run()
	if n := len(w.instances()); n != 0 {
		t.Fatalf("60 s after the switch: %d instances, want 0", n)
	}
}
