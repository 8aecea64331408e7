package sched

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/cairnhq/cairn/internal/hostapi"
)

func TestPlace(t *testing.T) {
	ready := func(id string, n int) Host {
		return Host{ID: id, State: hostapi.HostReady, Capacity: hostapi.Capacity{Instances: n}}
	}
	in := func(id, dep, ver, host, state string) Instance {
		return Instance{ID: id, Deployment: dep, Version: ver, Host: host, State: state}
	}
	for _, tc := range []struct {
		name string
		s    Snapshot
		want Plan
	}{
		{"nothing", Snapshot{}, Plan{}},
		{"scale up spreads over hosts",
			Snapshot{Hosts: []Host{ready("b", 10), ready("a", 10)}, Wants: []Want{{Deployment: "web", Version: "v1", Replicas: 3}}},
			Plan{Create: []Placement{{"web", "v1", "a"}, {"web", "v1", "b"}, {"web", "v1", "a"}}}},
		{"no ready host",
			Snapshot{Hosts: []Host{{ID: "a", State: hostapi.HostLost}, {ID: "b", State: hostapi.HostDraining}},
				Wants: []Want{{Deployment: "web", Version: "v1", Replicas: 1}}},
			Plan{}},
		{"instance slots",
			Snapshot{Hosts: []Host{ready("a", 1), ready("b", 1)}, Wants: []Want{{Deployment: "web", Version: "v1", Replicas: 3}}},
			Plan{Create: []Placement{{"web", "v1", "a"}, {"web", "v1", "b"}}}},
		{"memory",
			Snapshot{Hosts: []Host{{ID: "a", State: hostapi.HostReady, Capacity: hostapi.Capacity{MemoryBytes: 1 << 30}}},
				Wants: []Want{{Deployment: "web", Version: "v1", Replicas: 3}}},
			Plan{Create: []Placement{{"web", "v1", "a"}, {"web", "v1", "a"}}}},
		{"cpu",
			Snapshot{Hosts: []Host{{ID: "a", State: hostapi.HostReady, Capacity: hostapi.Capacity{CPU: 1}}},
				Wants: []Want{{Deployment: "web", Version: "v1", Replicas: 3, Limits: hostapi.Limits{CPU: 0.5, MemoryBytes: 1}}}},
			Plan{Create: []Placement{{"web", "v1", "a"}, {"web", "v1", "a"}}}},
		{"steady",
			Snapshot{Hosts: []Host{ready("a", 10)}, Instances: []Instance{in("w1", "web", "v1", "a", "healthy")},
				Wants: []Want{{Deployment: "web", Version: "v1", Replicas: 1}}},
			Plan{}},
		{"scale down removes failed, then newest",
			Snapshot{Hosts: []Host{ready("a", 10)}, Instances: []Instance{in("w1", "web", "v1", "a", "healthy"),
				in("w2", "web", "v1", "a", "failed"), in("w3", "web", "v1", "a", "healthy")},
				Wants: []Want{{Deployment: "web", Version: "v1", Replicas: 1}}},
			Plan{Remove: []string{"w2", "w3"}}},
		{"a failed instance counts",
			Snapshot{Hosts: []Host{ready("a", 10)}, Instances: []Instance{in("w1", "web", "v1", "a", "failed")},
				Wants: []Want{{Deployment: "web", Version: "v1", Replicas: 1}}},
			Plan{}},
		{"new version replaces",
			Snapshot{Hosts: []Host{ready("a", 1)}, Instances: []Instance{in("w1", "web", "v1", "a", "healthy")},
				Wants: []Want{{Deployment: "web", Version: "v2", Replicas: 1}}},
			Plan{Create: []Placement{{"web", "v2", "a"}}, Remove: []string{"w1"}}},
		{"lost host replaced",
			Snapshot{Hosts: []Host{{ID: "a", State: hostapi.HostLost}, ready("b", 10)},
				Instances: []Instance{in("w1", "web", "v1", "a", "healthy")},
				Wants:     []Want{{Deployment: "web", Version: "v1", Replicas: 1}}},
			Plan{Create: []Placement{{"web", "v1", "b"}}, Remove: []string{"w1"}}},
		{"unknown host and unwanted deployment",
			Snapshot{Hosts: []Host{ready("a", 10)}, Instances: []Instance{in("w1", "web", "v1", "gone", "healthy"),
				in("x1", "old", "v1", "a", "healthy")}},
			Plan{Remove: []string{"w1", "x1"}}},
		{"draining host keeps, takes no new",
			Snapshot{Hosts: []Host{{ID: "a", State: hostapi.HostDraining}, ready("b", 10)},
				Instances: []Instance{in("w1", "web", "v1", "a", "healthy")},
				Wants:     []Want{{Deployment: "web", Version: "v1", Replicas: 2}}},
			Plan{Create: []Placement{{"web", "v1", "b"}}}},
		{"two deployments share slots in name order",
			Snapshot{Hosts: []Host{ready("a", 2)}, Wants: []Want{{Deployment: "b", Version: "1", Replicas: 2},
				{Deployment: "a", Version: "1", Replicas: 1}}},
			Plan{Create: []Placement{{"a", "1", "a"}, {"b", "1", "a"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Place(tc.s)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("Place =\n%+v\nwant\n%+v", got, tc.want)
			}
			// Pure: the same snapshot gives the same plan.
			if again := Place(tc.s); !reflect.DeepEqual(again, got) {
				t.Errorf("second Place = %+v", again)
			}
		})
	}
}
