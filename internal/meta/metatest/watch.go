package metatest

import (
	"context"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

// testWatch checks meta.Watcher: a value after each committed pointer change,
// and the channel closed once ctx ends.
func testWatch(t *testing.T, s meta.Store) {
	w := capability[meta.Watcher](t, s)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	ch := w.Watch(ctx)
	d := newDeployment(t, s, "site")
	drain := func() {
		for {
			select {
			case <-ch:
			default:
				return
			}
		}
	}
	wait := func(what string) {
		t.Helper()
		select {
		case _, ok := <-ch:
			if !ok {
				t.Fatalf("%s: channel closed", what)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no notification within 5s", what)
		}
	}
	drain()
	publish(t, s, d.ID, "one", true)
	wait("publish")
	publish(t, s, d.ID, "two", false)
	drain()
	if _, err := s.Activate(t.Context(), d.ID, 2, "x", meta.ActionActivate); err != nil {
		t.Fatal(err)
	}
	wait("activate")
	addDomain(t, s, "example.com", d.ID, nil)
	wait("domain add")
	v1, err := s.GetVersionByNumber(t.Context(), d.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetDomainVersion(t.Context(), "example.com", &v1.ID, "x"); err != nil {
		t.Fatal(err)
	}
	wait("domain repoint")

	cancel()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("channel not closed within 5s of ctx ending")
		}
	}
}
