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
	region := func(id, r string) Host {
		return Host{ID: id, State: hostapi.HostReady, Region: r}
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
		{"a preview wants one instance, even with replicas 0, in no region",
			Snapshot{Hosts: []Host{region("a", "eu"), region("b", "us")}, Wants: []Want{{Deployment: "web", Version: "v2",
				Regions: map[string]int{"eu": 2}, Previews: []Preview{{Version: "v1"}}}}},
			Plan{Create: []Placement{{"web", "v1", "a"}}}},
		{"a preview beside the active version: one of it is kept, the surplus and the asleep go",
			Snapshot{Hosts: []Host{ready("a", 10)}, Instances: []Instance{in("w1", "web", "v1", "a", "healthy"),
				in("w2", "web", "v1", "a", "healthy"), in("w3", "web", "v2", "a", "healthy"), in("w4", "web", "v3", "a", "healthy")},
				Wants: []Want{{Deployment: "web", Version: "v2", Replicas: 1, Previews: []Preview{{Version: "v1"}, {Version: "v2"}}}}},
			Plan{Remove: []string{"w2", "w4"}}},
		{"asleep: replicas 0 and no preview removes every instance",
			Snapshot{Hosts: []Host{ready("a", 10)}, Instances: []Instance{in("w1", "web", "v1", "a", "healthy")},
				Wants: []Want{{Deployment: "web", Version: "v1"}}},
			Plan{Remove: []string{"w1"}}},
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
		{"draining host keeps its instance until replaced, takes no new",
			Snapshot{Hosts: []Host{{ID: "a", State: hostapi.HostDraining}, ready("b", 10)},
				Instances: []Instance{in("w1", "web", "v1", "a", "healthy")},
				Wants:     []Want{{Deployment: "web", Version: "v1", Replicas: 2}}},
			Plan{Create: []Placement{{"web", "v1", "b"}, {"web", "v1", "b"}}}},
		{"draining: replacement starting, the old one stays",
			Snapshot{Hosts: []Host{{ID: "a", State: hostapi.HostDraining}, ready("b", 10)},
				Instances: []Instance{in("w1", "web", "v1", "a", "healthy"), in("w2", "web", "v1", "b", "starting")},
				Wants:     []Want{{Deployment: "web", Version: "v1", Replicas: 1}}},
			Plan{}},
		{"draining: replacement healthy, the old one goes",
			Snapshot{Hosts: []Host{{ID: "a", State: hostapi.HostDraining}, ready("b", 10)},
				Instances: []Instance{in("w1", "web", "v1", "a", "healthy"), in("w2", "web", "v1", "b", "healthy")},
				Wants:     []Want{{Deployment: "web", Version: "v1", Replicas: 1}}},
			Plan{Remove: []string{"w1"}}},
		{"spreads over hosts, then regions",
			Snapshot{Hosts: []Host{region("a", "eu"), region("b", "eu"), region("c", "us")},
				Wants: []Want{{Deployment: "web", Version: "v1", Replicas: 3}}},
			Plan{Create: []Placement{{"web", "v1", "a"}, {"web", "v1", "c"}, {"web", "v1", "b"}}}},
		{"spread: regions first",
			Snapshot{Hosts: []Host{region("a", "eu"), region("b", "eu"), region("c", "us")},
				Instances: []Instance{in("w1", "web", "v1", "a", "healthy")},
				Wants:     []Want{{Deployment: "web", Version: "v1", Replicas: 3, Spread: true}}},
			Plan{Create: []Placement{{"web", "v1", "c"}, {"web", "v1", "b"}}}},
		{"count per region",
			Snapshot{Hosts: []Host{region("a", "eu"), region("b", "eu"), region("c", "us")},
				Wants: []Want{{Deployment: "web", Version: "v1", Replicas: 3, Regions: map[string]int{"eu": 1, "us": 2}}}},
			Plan{Create: []Placement{{"web", "v1", "a"}, {"web", "v1", "c"}, {"web", "v1", "c"}}}},
		{"count per region removes from a region with too many",
			Snapshot{Hosts: []Host{region("a", "eu"), region("c", "us")},
				Instances: []Instance{in("w1", "web", "v1", "a", "healthy"), in("w2", "web", "v1", "a", "healthy")},
				Wants:     []Want{{Deployment: "web", Version: "v1", Replicas: 2, Regions: map[string]int{"eu": 1, "us": 1}}}},
			Plan{Create: []Placement{{"web", "v1", "c"}}, Remove: []string{"w2"}}},
		{"a region with no host: nothing placed there",
			Snapshot{Hosts: []Host{region("a", "eu")},
				Wants: []Want{{Deployment: "web", Version: "v1", Replicas: 1, Regions: map[string]int{"ap": 1}}}},
			Plan{}},
		{"prefers a host whose cache holds the release",
			Snapshot{Hosts: []Host{ready("a", 10), {ID: "b", State: hostapi.HostReady, Cached: []string{"r1"}}},
				Wants: []Want{{Deployment: "web", Version: "v1", Release: "r1", Replicas: 1}}},
			Plan{Create: []Placement{{"web", "v1", "b"}}}},
		{"spreading comes before the cache",
			Snapshot{Hosts: []Host{ready("a", 10), {ID: "b", State: hostapi.HostReady, Cached: []string{"r1"}}},
				Wants: []Want{{Deployment: "web", Version: "v1", Release: "r1", Replicas: 2}}},
			Plan{Create: []Placement{{"web", "v1", "b"}, {"web", "v1", "a"}}}},
		{"never a weaker isolation (a stronger one is fine)",
			Snapshot{Hosts: []Host{ready("a", 10), {ID: "b", State: hostapi.HostReady, Isolation: hostapi.IsolationMicroVM}},
				Wants: []Want{{Deployment: "vm", Version: "v1", Replicas: 2, Isolation: hostapi.IsolationMicroVM},
					{Deployment: "web", Version: "v1", Replicas: 2}}},
			Plan{Create: []Placement{{"vm", "v1", "b"}, {"vm", "v1", "b"}, {"web", "v1", "a"}, {"web", "v1", "b"}}}},
		{"microvm wanted, only containers: nothing",
			Snapshot{Hosts: []Host{ready("a", 10)},
				Wants: []Want{{Deployment: "vm", Version: "v1", Replicas: 1, Isolation: hostapi.IsolationMicroVM}}},
			Plan{}},
		{"per-deployment limits",
			Snapshot{Hosts: []Host{{ID: "a", State: hostapi.HostReady, Capacity: hostapi.Capacity{CPU: 2, MemoryBytes: 1 << 30}}},
				Wants: []Want{{Deployment: "web", Version: "v1", Replicas: 5, Limits: hostapi.Limits{CPU: 0.25, MemoryBytes: 256 << 20}}}},
			Plan{Create: []Placement{{"web", "v1", "a"}, {"web", "v1", "a"}, {"web", "v1", "a"}, {"web", "v1", "a"}}}},
		{"rollout: the old version stays, the target is placed beside it",
			Snapshot{Hosts: []Host{ready("a", 10), ready("b", 10)},
				Instances: []Instance{in("w1", "web", "v1", "a", "healthy"), in("w2", "web", "v1", "b", "healthy")},
				Wants:     []Want{{Deployment: "web", Version: "v1", Target: "v2", Replicas: 2}}},
			Plan{Create: []Placement{{"web", "v2", "a"}, {"web", "v2", "b"}}}},
		{"rollout: a third version goes",
			Snapshot{Hosts: []Host{ready("a", 10)},
				Instances: []Instance{in("w1", "web", "v1", "a", "healthy"), in("w3", "web", "v3", "a", "starting")},
				Wants:     []Want{{Deployment: "web", Version: "v1", Target: "v2", Replicas: 1}}},
			Plan{Create: []Placement{{"web", "v2", "a"}}, Remove: []string{"w3"}}},
		{"after a switch: the kept old version stays, nothing new of it",
			Snapshot{Hosts: []Host{ready("a", 10)},
				Instances: []Instance{in("w1", "web", "v1", "a", "healthy"), in("w2", "web", "v2", "a", "healthy")},
				Wants:     []Want{{Deployment: "web", Version: "v2", Keep: []string{"v1"}, Replicas: 1}}},
			Plan{}},
		{"a failed rollout: its instances go",
			Snapshot{Hosts: []Host{ready("a", 10)},
				Instances: []Instance{in("w1", "web", "v1", "a", "healthy"), in("w2", "web", "v2", "a", "unhealthy")},
				Wants:     []Want{{Deployment: "web", Version: "v1", Replicas: 1}}},
			Plan{Remove: []string{"w2"}}},
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
