// Package sched decides where instances run. Place is a pure function of a
// snapshot: the API reads the snapshot from the metadata store
// (meta.Hosts.PlacementState), calls Place and applies the plan only if
// nothing moved since (meta.Hosts.ApplyPlacement). Issue 15's scheduler
// extends it (regions, isolation, spreading by zone, draining).
package sched

import (
	"sort"

	"github.com/cairnhq/cairn/internal/hostapi"
)

// DefaultLimits bound an instance until deployments carry their own.
var DefaultLimits = hostapi.Limits{CPU: 1, MemoryBytes: 512 << 20, Pids: 512}

// Host is a host as placement sees it.
type Host struct {
	ID       string
	State    string
	Capacity hostapi.Capacity
}

// Instance is an existing instance.
type Instance struct {
	ID         string
	Deployment string
	Version    string
	Host       string
	State      string
}

// Want is a deployment that wants Replicas instances of Version.
type Want struct {
	Deployment string
	Version    string
	Replicas   int
	Limits     hostapi.Limits
}

// Snapshot is what Place decides from.
type Snapshot struct {
	Hosts     []Host
	Instances []Instance
	Wants     []Want // deployments absent here want no instance
}

// Placement is one new instance of Deployment's Version on Host.
type Placement struct {
	Deployment string
	Version    string
	Host       string
}

// Plan is what to create and which instance ids to remove.
type Plan struct {
	Create []Placement
	Remove []string
}

// Place plans the instances: for each wanted deployment it keeps the
// instances of the wanted version on hosts that are not lost, removes the
// others (other versions, lost hosts, a deployment that wants none) and
// the surplus (failed first, then the newest ids), and places the missing
// ones on ready hosts with room (instances, memory and cpu), the host with
// the fewest instances first (ties: by id). A failed instance counts as one
// of the replicas: it is not replaced in a loop, it stays for its logs until
// the count changes. Instances that fit nowhere are not placed (the next
// run tries again).
func Place(s Snapshot) Plan {
	var plan Plan
	hosts := map[string]*hostRoom{}
	var order []*hostRoom
	for _, h := range s.Hosts {
		r := &hostRoom{Host: h}
		hosts[h.ID] = r
		order = append(order, r)
	}
	wants := map[string]Want{}
	for _, w := range s.Wants {
		wants[w.Deployment] = w
	}
	kept := map[string][]Instance{}
	insts := append([]Instance(nil), s.Instances...)
	sort.Slice(insts, func(i, j int) bool { return insts[i].ID < insts[j].ID })
	for _, in := range insts {
		w, ok := wants[in.Deployment]
		h := hosts[in.Host]
		if !ok || w.Replicas <= 0 || in.Version != w.Version || h == nil || h.State == hostapi.HostLost {
			plan.Remove = append(plan.Remove, in.ID)
			continue
		}
		kept[in.Deployment] = append(kept[in.Deployment], in)
	}
	// Surplus first, so that the room it frees is counted.
	for _, w := range s.Wants {
		k := kept[w.Deployment]
		if len(k) > w.Replicas {
			sort.SliceStable(k, func(i, j int) bool { // keep healthy and oldest-id first
				fi, fj := k[i].State == hostapi.StateFailed, k[j].State == hostapi.StateFailed
				if fi != fj {
					return !fi
				}
				return k[i].ID < k[j].ID
			})
			for _, in := range k[w.Replicas:] {
				plan.Remove = append(plan.Remove, in.ID)
			}
			k = k[:w.Replicas]
			kept[w.Deployment] = k
		}
		for _, in := range k {
			hosts[in.Host].use(limitsOf(w))
		}
	}
	// Wants in deployment order: the plan does not depend on input order.
	ws := append([]Want(nil), s.Wants...)
	sort.Slice(ws, func(i, j int) bool { return ws[i].Deployment < ws[j].Deployment })
	for _, w := range ws {
		l := limitsOf(w)
		for n := len(kept[w.Deployment]); n < w.Replicas; n++ {
			h := pick(order, l)
			if h == nil {
				break
			}
			h.use(l)
			plan.Create = append(plan.Create, Placement{Deployment: w.Deployment, Version: w.Version, Host: h.ID})
		}
	}
	sort.Strings(plan.Remove)
	return plan
}

func limitsOf(w Want) hostapi.Limits {
	if w.Limits == (hostapi.Limits{}) {
		return DefaultLimits
	}
	return w.Limits
}

type hostRoom struct {
	Host
	n   int
	mem int64
	cpu float64
}

func (h *hostRoom) use(l hostapi.Limits) {
	h.n++
	h.mem += l.MemoryBytes
	h.cpu += l.CPU
}

// fits: a zero capacity field does not limit.
func (h *hostRoom) fits(l hostapi.Limits) bool {
	c := h.Capacity
	return h.State == hostapi.HostReady &&
		(c.Instances <= 0 || h.n+1 <= c.Instances) &&
		(c.MemoryBytes <= 0 || h.mem+l.MemoryBytes <= c.MemoryBytes) &&
		(c.CPU <= 0 || h.cpu+l.CPU <= c.CPU+1e-9)
}

func pick(hosts []*hostRoom, l hostapi.Limits) *hostRoom {
	var best *hostRoom
	for _, h := range hosts {
		if !h.fits(l) {
			continue
		}
		if best == nil || h.n < best.n || (h.n == best.n && h.ID < best.ID) {
			best = h
		}
	}
	return best
}
