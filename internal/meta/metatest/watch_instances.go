package metatest

import (
	"context"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/hostapi"
	"github.com/cairnhq/cairn/internal/meta"
)

// testWatchInstances checks that what the router serves by is announced
// through meta.Watcher: an instance's state or address reported by a
// heartbeat, an instance removed by placement, a host lost and back.
func testWatchInstances(t *testing.T, s meta.Store) {
	w := capability[meta.Watcher](t, s)
	hs, ctx := hostStore(t, s), t.Context()
	d, v := rootfsVersion(t, s, "routed")
	registerHost(t, hs, "a")
	ps, err := hs.PlacementState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := hs.ApplyPlacement(ctx, ps.Gen, []meta.NewInstance{{ID: "routed-1", DeploymentID: d.ID, VersionID: v.ID, HostID: "a"}},
		nil, "server"); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := w.Watch(wctx)
	step := func(what string, fn func() error) {
		t.Helper()
		for drained := false; !drained; {
			select {
			case <-ch:
			default:
				drained = true
			}
		}
		if err := fn(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		select {
		case _, ok := <-ch:
			if !ok {
				t.Fatalf("%s: channel closed", what)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no notification within 5s", what)
		}
	}
	beat := func(state, addr string) func() error {
		return func() error {
			return hs.Heartbeat(ctx, "a", hostapi.Capacity{}, []hostapi.Observed{{ID: "routed-1", State: state, Addr: addr}})
		}
	}
	step("healthy", beat(hostapi.StateHealthy, "10.0.0.2:8080"))
	step("new address", beat(hostapi.StateHealthy, "10.0.0.3:8080"))
	step("unhealthy", beat(hostapi.StateUnhealthy, "10.0.0.3:8080"))
	step("host lost", func() error {
		h, err := hs.GetHost(ctx, "a")
		if err != nil {
			return err
		}
		_, err = hs.MarkLostHosts(ctx, h.LastSeen.Add(time.Nanosecond), "server")
		return err
	})
	step("host back", beat(hostapi.StateHealthy, "10.0.0.3:8080"))
	step("removed", func() error {
		ps, err := hs.PlacementState(ctx)
		if err != nil {
			return err
		}
		return hs.ApplyPlacement(ctx, ps.Gen, nil, []string{"routed-1"}, "server")
	})
}
