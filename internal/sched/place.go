// Package sched decides where instances run and drives rollouts.
//
// Place is a pure function of a snapshot (hosts, instances, what each
// deployment wants); the scheduler (Scheduler, the sched role) reads the
// snapshot from the metadata store (meta.Hosts.PlacementState), calls
// Place and applies the plan only if nothing moved since
// (meta.Hosts.ApplyPlacement). See docs/design.md, "Scheduling and
// routing".
package sched

import (
	"slices"
	"sort"

	"github.com/cairnhq/cairn/internal/hostapi"
)

// DefaultLimits bound an instance whose deployment sets no cpu or memory.
var DefaultLimits = hostapi.Limits{CPU: 1, MemoryBytes: 512 << 20, Pids: 512}

// Host is a host as placement sees it.
type Host struct {
	ID        string
	State     string
	Region    string
	Isolation string // "" is container
	Capacity  hostapi.Capacity
	Cached    []string // release sha256s its cache holds
}

// Instance is an existing instance.
type Instance struct {
	ID         string
	Deployment string
	Version    string
	Host       string
	State      string
}

// Want is a deployment that wants Replicas instances of Version (its
// active version) and, during a rollout, as many of Target as well.
type Want struct {
	Deployment string
	Version    string
	Release    string // Version's release: hosts whose cache holds it come first
	Replicas   int
	Limits     hostapi.Limits
	Isolation  string         // the weakest isolation allowed ("" is container)
	Regions    map[string]int // instances per region; nil: anywhere
	Spread     bool           // spread over regions first, then hosts
	// Target is the version a rollout brings up next to Version, with
	// TargetRelease its release; "" when no rollout runs.
	Target        string
	TargetRelease string
	// Keep are other versions whose instances stay as they are (the old
	// version for a grace after a switch); none are created.
	Keep []string
	// Previews are other versions that want one instance each, anywhere
	// (regions ignored): preview hosts a request woke (docs/design.md,
	// "Scale to zero"). They are placed even when Replicas is 0.
	Previews []Preview
}

// Preview is a version woken by a request, with its release.
type Preview struct {
	Version string
	Release string
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

// Place plans the instances. For each wanted deployment, and for each of
// its managed versions (the active one and a rollout's target), it keeps
// the instances on hosts that are neither lost nor draining up to
// Replicas (per region when Regions counts them; the surplus goes failed
// first, then newest id), and removes the instances of any other version
// (but Keep's), of lost hosts and of deployments that want none.
// Instances on a draining host stay until as many healthy ones run
// elsewhere, while their replacements are placed. Missing instances go to
// ready hosts with room (instance slots, memory, cpu) and an isolation at
// least the one wanted: first the host with the fewest instances of that
// deployment's version, then the region with the fewest, then a host whose
// cache holds the release, then the least loaded, then by id (with Spread,
// region before host). A failed instance counts as one of the replicas: it
// is not replaced in a loop, it stays for its logs until the count
// changes. Instances that fit nowhere are not placed (the next run tries
// again). The plan does not depend on the order of the snapshot's slices.
func Place(s Snapshot) Plan {
	var plan Plan
	hosts := map[string]*hostRoom{}
	var order []*hostRoom
	for _, h := range s.Hosts {
		r := &hostRoom{Host: h, mine: map[string]int{}}
		hosts[h.ID] = r
		order = append(order, r)
	}
	sort.Slice(order, func(i, j int) bool { return order[i].ID < order[j].ID })
	wants := map[string]Want{}
	for _, w := range s.Wants {
		wants[w.Deployment] = w
	}
	type key struct{ dep, ver string }
	kept := map[key][]Instance{}
	insts := append([]Instance(nil), s.Instances...)
	sort.Slice(insts, func(i, j int) bool { return insts[i].ID < insts[j].ID })
	for _, in := range insts {
		w, ok := wants[in.Deployment]
		h := hosts[in.Host]
		switch {
		case !ok || h == nil || h.State == hostapi.HostLost:
		case slices.Contains(w.Keep, in.Version) && in.Version != w.Version && in.Version != w.Target:
			h.use(limitsOf(w), in.Deployment+"/"+in.Version)
			continue
		case w.Replicas > 0 && (in.Version == w.Version || (w.Target != "" && in.Version == w.Target)),
			w.isPreview(in.Version):
			kept[key{in.Deployment, in.Version}] = append(kept[key{in.Deployment, in.Version}], in)
			continue
		}
		plan.Remove = append(plan.Remove, in.ID)
	}
	ws := append([]Want(nil), s.Wants...)
	sort.Slice(ws, func(i, j int) bool { return ws[i].Deployment < ws[j].Deployment })
	type need struct {
		w       Want
		ver     string
		release string
		missing map[string]int // region ("" for any) → count
	}
	var needs []need
	// Surplus and draining first, so that the room they free is counted.
	for _, all := range ws {
		l := limitsOf(all)
		for _, vr := range all.versions() {
			w := vr.w
			k := kept[key{w.Deployment, vr.ver}]
			var staying, leaving []Instance
			for _, in := range k {
				if hosts[in.Host].State == hostapi.HostDraining {
					leaving = append(leaving, in)
				} else {
					staying = append(staying, in)
				}
			}
			staying, removed, missing := fit(w, staying, hosts)
			plan.Remove = append(plan.Remove, removed...)
			healthy := 0
			for _, in := range staying {
				if in.State == hostapi.StateHealthy {
					healthy++
				}
			}
			for _, in := range leaving {
				if healthy >= w.Replicas {
					plan.Remove = append(plan.Remove, in.ID)
					continue
				}
				hosts[in.Host].use(l, w.Deployment+"/"+vr.ver)
			}
			for _, in := range staying {
				hosts[in.Host].use(l, w.Deployment+"/"+vr.ver)
			}
			needs = append(needs, need{w, vr.ver, vr.release, missing})
		}
	}
	for _, n := range needs {
		l := limitsOf(n.w)
		regions := make([]string, 0, len(n.missing))
		for r := range n.missing {
			regions = append(regions, r)
		}
		sort.Strings(regions)
		for _, region := range regions {
			for range n.missing[region] {
				h := pick(order, n.w, n.ver, n.release, region, l)
				if h == nil {
					break
				}
				h.use(l, n.w.Deployment+"/"+n.ver)
				plan.Create = append(plan.Create, Placement{Deployment: n.w.Deployment, Version: n.ver, Host: h.ID})
			}
		}
	}
	sort.Strings(plan.Remove)
	return plan
}

// managed is one version Place manages, with what it wants of it.
type managed struct {
	w            Want // Replicas and Regions are this version's
	ver, release string
}

// versions are w's managed versions with their releases: the active
// version and a rollout's target when Replicas > 0, and each preview that
// is neither (one instance, any region).
func (w Want) versions() []managed {
	var vs []managed
	if w.Replicas > 0 {
		vs = append(vs, managed{w, w.Version, w.Release})
		if w.Target != "" && w.Target != w.Version {
			vs = append(vs, managed{w, w.Target, w.TargetRelease})
		}
	}
	for _, p := range w.Previews {
		if w.isPreview(p.Version) {
			one := w
			one.Replicas, one.Regions, one.Spread = 1, nil, false
			vs = append(vs, managed{one, p.Version, p.Release})
		}
	}
	return vs
}

// isPreview: ver is one of w's previews, and not its active version, a
// rollout's target or a version kept as it is.
func (w Want) isPreview(ver string) bool {
	if ver == w.Version || ver == w.Target || slices.Contains(w.Keep, ver) {
		return false
	}
	for _, p := range w.Previews {
		if p.Version == ver {
			return true
		}
	}
	return false
}

// fit keeps up to w's count of instances (per region when it counts
// them), failed ones removed first and then the newest ids, and says how
// many are missing per region ("" for any region).
func fit(w Want, in []Instance, hosts map[string]*hostRoom) (keep []Instance, remove []string, missing map[string]int) {
	byRegion := map[string][]Instance{}
	for _, i := range in {
		r := ""
		if w.Regions != nil {
			r = hosts[i.Host].Region
		}
		byRegion[r] = append(byRegion[r], i)
	}
	want := map[string]int{"": w.Replicas}
	if w.Regions != nil {
		want = w.Regions
	}
	missing = map[string]int{}
	for r, k := range byRegion {
		n := want[r]
		if len(k) > n {
			sort.SliceStable(k, func(i, j int) bool { // keep healthy and oldest-id first
				fi, fj := k[i].State == hostapi.StateFailed, k[j].State == hostapi.StateFailed
				if fi != fj {
					return !fi
				}
				return k[i].ID < k[j].ID
			})
			for _, x := range k[n:] {
				remove = append(remove, x.ID)
			}
			k = k[:n]
		}
		keep = append(keep, k...)
	}
	for r, n := range want {
		if m := n - len(byRegion[r]); m > 0 {
			missing[r] = m
		}
	}
	return keep, remove, missing
}

func limitsOf(w Want) hostapi.Limits {
	l := w.Limits
	if l.CPU == 0 {
		l.CPU = DefaultLimits.CPU
	}
	if l.MemoryBytes == 0 {
		l.MemoryBytes = DefaultLimits.MemoryBytes
	}
	if l.Pids == 0 {
		l.Pids = DefaultLimits.Pids
	}
	return l
}

type hostRoom struct {
	Host
	n    int
	mem  int64
	cpu  float64
	mine map[string]int // "dep/version" → instances here
}

func (h *hostRoom) use(l hostapi.Limits, dv string) {
	h.n++
	h.mem += l.MemoryBytes
	h.cpu += l.CPU
	h.mine[dv]++
}

// IsolationRank orders isolation levels, weakest first ("" is container).
func IsolationRank(level string) int {
	if level == hostapi.IsolationMicroVM {
		return 2
	}
	return 1
}

// fits: a zero capacity field does not limit.
func (h *hostRoom) fits(w Want, l hostapi.Limits) bool {
	c := h.Capacity
	return h.State == hostapi.HostReady && IsolationRank(h.Isolation) >= IsolationRank(w.Isolation) &&
		(c.Instances <= 0 || h.n+1 <= c.Instances) &&
		(c.MemoryBytes <= 0 || h.mem+l.MemoryBytes <= c.MemoryBytes) &&
		(c.CPU <= 0 || h.cpu+l.CPU <= c.CPU+1e-9)
}

// pick chooses the host for one more instance of w's version ver, in
// region when it is not "".
func pick(hosts []*hostRoom, w Want, ver, release, region string, l hostapi.Limits) *hostRoom {
	dv := w.Deployment + "/" + ver
	perRegion := map[string]int{}
	for _, h := range hosts {
		perRegion[h.Region] += h.mine[dv]
	}
	var best *hostRoom
	var bestScore [5]int
	for _, h := range hosts {
		if (region != "" && h.Region != region) || !h.fits(w, l) {
			continue
		}
		cached := 1
		if release != "" && slices.Contains(h.Cached, release) {
			cached = 0
		}
		score := [5]int{h.mine[dv], perRegion[h.Region], cached, h.n, 0}
		if w.Spread {
			score[0], score[1] = score[1], score[0]
		}
		if best == nil || less(score, bestScore) || (score == bestScore && h.ID < best.ID) {
			best, bestScore = h, score
		}
	}
	return best
}

func less(a, b [5]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}
