package postgres_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/meta/postgres"
)

// wake fails unless ch receives a value within d.
func wake(t *testing.T, what string, ch <-chan struct{}, d time.Duration) {
	t.Helper()
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatalf("%s: channel closed", what)
		}
	case <-time.After(d):
		t.Fatalf("%s: no value within %v", what, d)
	}
}

// quiet drains ch until it stays empty for d, then fails if it receives a
// value within d again (when strict).
func quiet(t *testing.T, what string, ch <-chan struct{}, d time.Duration, strict bool) {
	t.Helper()
	for {
		select {
		case <-ch:
			if strict {
				t.Fatalf("%s: unexpected value", what)
			}
			continue
		case <-time.After(d):
		}
		return
	}
}

func publish(t *testing.T, s meta.Store, depID, content string, activate bool) *meta.Version {
	t.Helper()
	sum := sha256.Sum256([]byte(content))
	v, err := s.CreateVersion(t.Context(), meta.NewVersion{
		DeploymentID: depID, Activate: activate, Actor: "tester",
		Release: meta.Release{SHA256: hex.EncodeToString(sum[:]), SizeBytes: 1, URI: "file:///" + content},
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func deployment(t *testing.T, s meta.Store, name string) *meta.Deployment {
	t.Helper()
	d := &meta.Deployment{Name: name, Kind: meta.KindStatic}
	if err := s.CreateDeployment(t.Context(), d, "tester"); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestWatchAcrossStores runs two Stores on one schema, as two processes
// would: a change committed by either wakes the other's Watch within 1s, and
// the woken one reads it. A Store on another schema of the same database is
// not woken.
func TestWatchAcrossStores(t *testing.T) {
	u, _ := freshSchema(t)
	other, _ := freshSchema(t)
	a, b, c := open(t, u), open(t, u), open(t, other)
	chA, chB, chC := a.Watch(t.Context()), b.Watch(t.Context()), c.Watch(t.Context())
	d := deployment(t, a, "site")
	publish(t, a, d.ID, "one", true)
	v2 := publish(t, a, d.ID, "two", false)
	quiet(t, "b before activate", chB, 200*time.Millisecond, false)

	if _, err := a.Activate(t.Context(), d.ID, 2, "x", meta.ActionActivate); err != nil {
		t.Fatal(err)
	}
	wake(t, "b after a's activate", chB, time.Second)
	if got, err := b.GetDeployment(t.Context(), d.ID); err != nil || *got.ActiveVersionID != v2.ID {
		t.Errorf("b after the wake-up: %+v, %v; want v2 active", got, err)
	}

	quiet(t, "a before rollback", chA, 200*time.Millisecond, false)
	if _, err := b.Activate(t.Context(), d.ID, 1, "x", meta.ActionRollback); err != nil {
		t.Fatal(err)
	}
	wake(t, "a after b's rollback", chA, time.Second)
	quiet(t, "c on another schema", chC, 300*time.Millisecond, true)
}

// TestWatchRolledBack: a change that fails (and so rolls back) wakes no one.
func TestWatchRolledBack(t *testing.T) {
	u, _ := freshSchema(t)
	s := open(t, u)
	ch := s.Watch(t.Context())
	d := deployment(t, s, "site")
	if err := s.CreateDomain(t.Context(), &meta.Domain{Hostname: "example.com", DeploymentID: d.ID}, "x"); err != nil {
		t.Fatal(err)
	}
	wake(t, "domain add", ch, time.Second)
	quiet(t, "after domain add", ch, 100*time.Millisecond, false)
	err := s.CreateDomain(t.Context(), &meta.Domain{Hostname: "Example.com", DeploymentID: d.ID}, "x")
	if !errors.Is(err, meta.ErrConflict) {
		t.Fatalf("second CreateDomain: %v, want ErrConflict", err)
	}
	quiet(t, "after a refused domain add", ch, 300*time.Millisecond, true)
}

// listenerPID waits for the backend of schema's connection that last ran
// LISTEN, other than not, and returns its pid.
func listenerPID(t *testing.T, a *pgx.Conn, schema string, not uint32) uint32 {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var pid uint32
		err := a.QueryRow(t.Context(), `SELECT pid FROM pg_stat_activity
			WHERE application_name = $1 AND query LIKE 'LISTEN%' AND pid <> $2`, schema, not).Scan(&pid)
		if err == nil {
			return pid
		}
	}
	t.Fatalf("no listener connection of %s", schema)
	return 0
}

// TestWatchReconnect kills the listener's connection: Watch dials again and
// sends one value (resync), then relays changes as before.
func TestWatchReconnect(t *testing.T) {
	u, schema := freshSchema(t)
	a := admin(t)
	s := open(t, u)
	ch := s.Watch(t.Context())
	d := deployment(t, s, "site")
	publish(t, s, d.ID, "one", true)
	wake(t, "publish", ch, time.Second)

	pid := listenerPID(t, a, schema, 0)
	if _, err := a.Exec(t.Context(), `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	wake(t, "resync after the listener was killed", ch, 5*time.Second)
	listenerPID(t, a, schema, pid)
	quiet(t, "after resync", ch, 100*time.Millisecond, false)
	publish(t, s, d.ID, "two", true)
	wake(t, "publish after reconnecting", ch, time.Second)
}

// TestWatchClose: Close closes every Watch channel; Watch after Close
// returns a closed channel.
func TestWatchClose(t *testing.T) {
	u, _ := freshSchema(t)
	s, err := postgres.Open(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	chs := []<-chan struct{}{s.Watch(context.Background()), s.Watch(t.Context())}
	s.Close()
	chs = append(chs, s.Watch(context.Background()))
	for i, ch := range chs {
		select {
		case _, ok := <-ch:
			if ok {
				t.Errorf("channel %d: a value after Close", i)
			}
		case <-time.After(time.Second):
			t.Errorf("channel %d not closed by Close", i)
		}
	}
}
