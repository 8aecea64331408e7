package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cairnhq/cairn/internal/hostapi"
	"github.com/cairnhq/cairn/internal/release"
	"github.com/cairnhq/cairn/internal/runtime/cache"
	"github.com/cairnhq/cairn/internal/runtime/netns"
	"github.com/cairnhq/cairn/internal/runtime/overlay"
)

// Config of a Runtime.
type Config struct {
	Dir         string       // the agent's data directory
	Cache       *cache.Cache // releases; on the same filesystem as Dir
	Net         *netns.Manager
	Driver      Driver
	Log         *slog.Logger
	MaxLog      int64          // bytes of an instance's log before it is rotated; 0: 8 MiB
	Nameservers []string       // written to /etc/resolv.conf of instances with egress; default: the host's non-loopback ones
	PackLimits  release.Limits // bound a build's packed output; zero: DefaultPackLimits
}

// Runtime implements hostapi.Runtime. Each instance has a directory
// Dir/instances/ID holding desired.json, state.json, its log, its overlay
// layers and its driver's bundle: a new Runtime over the same Dir finds
// (adopts) every instance an earlier process left running.
type Runtime struct {
	cfg   Config
	locks sync.Map // id → *sync.Mutex

	mu     sync.Mutex
	leases map[string]*cache.Lease // id → lease on its release
	done   chan struct{}
	wg     sync.WaitGroup // rotateLoop
	tear   sync.WaitGroup // teardowns
}

// state.json of an instance.
type instState struct {
	Addr       string    `json:"addr"`
	TreeDigest string    `json:"tree_digest"`
	StartedAt  time.Time `json:"started_at"`
	Restarts   int       `json:"restarts"`
	Stopping   bool      `json:"stopping,omitempty"`
}

var idRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// New returns a Runtime over cfg.Dir, adopting the instances found there:
// their releases are leased again, so the cache keeps them.
func New(ctx context.Context, cfg Config) (*Runtime, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxLog <= 0 {
		cfg.MaxLog = 8 << 20
	}
	if cfg.Nameservers == nil {
		cfg.Nameservers = hostNameservers()
	}
	// Bundles name their root by this path, and runc resolves a relative
	// root against the bundle: keep every path absolute.
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	cfg.Dir = dir
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "instances"), 0o700); err != nil {
		return nil, err
	}
	r := &Runtime{cfg: cfg, leases: map[string]*cache.Lease{}, done: make(chan struct{})}
	r.removeBuilds() // an earlier process's: nobody waits for their results
	des, err := os.ReadDir(filepath.Join(cfg.Dir, "instances"))
	if err != nil {
		return nil, err
	}
	for _, de := range des {
		id := de.Name()
		d, st, err := r.load(id)
		if err != nil {
			cfg.Log.Warn("instance state unreadable", "id", id, "err", err)
			continue
		}
		if st.Stopping {
			r.teardown(id) // an earlier process stopped it and did not finish
			continue
		}
		l, err := cfg.Cache.Acquire(ctx, d.Release, d.TreeDigest)
		if err != nil {
			cfg.Log.Warn("adopted instance's release", "id", id, "err", err)
			continue
		}
		r.leases[id] = l
	}
	r.wg.Add(1)
	go r.rotateLoop()
	return r, nil
}

// Close stops the Runtime's own goroutines and releases the spare
// network namespaces of its pool; instances keep running.
func (r *Runtime) Close() error {
	close(r.done)
	r.wg.Wait()
	r.tear.Wait()
	return r.cfg.Net.Close()
}

func (r *Runtime) Driver() string { return r.cfg.Driver.Name() }

// CachedReleases are the releases the host's cache holds (hostapi.CacheReporter).
func (r *Runtime) CachedReleases() []string { return r.cfg.Cache.Releases() }
func (r *Runtime) Isolation() string        { return r.cfg.Driver.Isolation() }

// VMRuntime is a Runtime over a microVM driver (one with Accel and
// KernelSHA256): it implements hostapi.MicroVMRuntime, so the agent
// records both on the host.
type VMRuntime struct {
	*Runtime
	vm interface {
		Accel() string
		KernelSHA256() string
	}
}

var _ hostapi.MicroVMRuntime = VMRuntime{}

func (r VMRuntime) Accel() string        { return r.vm.Accel() }
func (r VMRuntime) KernelSHA256() string { return r.vm.KernelSHA256() }

// ForHost is what an agent runs: r, or a VMRuntime when r's driver is a
// microVM driver.
func (r *Runtime) ForHost() hostapi.Runtime {
	if vm, ok := r.cfg.Driver.(interface {
		Accel() string
		KernelSHA256() string
	}); ok {
		return VMRuntime{Runtime: r, vm: vm}
	}
	return r
}

func (r *Runtime) dir(id string) string { return filepath.Join(r.cfg.Dir, "instances", id) }
func (r *Runtime) logPath(id string) string {
	return filepath.Join(r.dir(id), "log")
}

func (r *Runtime) lock(id string) func() {
	m, _ := r.locks.LoadOrStore(id, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

func (r *Runtime) root(id string, d hostapi.Desired) overlay.Root {
	return overlay.Root{Lower: r.cfg.Cache.TreeDir(d.Release), Dir: r.dir(id)}
}

func (r *Runtime) load(id string) (hostapi.Desired, instState, error) {
	var d hostapi.Desired
	var st instState
	b, err := os.ReadFile(filepath.Join(r.dir(id), "desired.json"))
	if err == nil {
		err = json.Unmarshal(b, &d)
	}
	if err == nil {
		if b, err = os.ReadFile(filepath.Join(r.dir(id), "state.json")); err == nil {
			err = json.Unmarshal(b, &st)
		}
	}
	return d, st, err
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Start implements hostapi.Runtime.
func (r *Runtime) Start(ctx context.Context, d hostapi.Desired) (hostapi.Observed, error) {
	if !idRE.MatchString(d.ID) {
		return hostapi.Observed{}, fmt.Errorf("instance id %q: want [a-z0-9-]", d.ID)
	}
	if len(d.Cmd) == 0 {
		return hostapi.Observed{}, fmt.Errorf("instance %s: no command", d.ID)
	}
	defer r.lock(d.ID)()
	t0 := time.Now()
	id := d.ID
	dir := r.dir(id)
	old, st, err := r.load(id)
	restart := err == nil
	if restart && st.Stopping {
		return hostapi.Observed{}, fmt.Errorf("instance %s is stopping", id)
	}
	if restart && old.Release != d.Release {
		return hostapi.Observed{}, fmt.Errorf("instance %s runs release %s, not %s: stop it first", id, old.Release, d.Release)
	}
	if restart {
		if s, err := r.cfg.Driver.Status(ctx, id); err == nil && s.Running {
			return r.observe(ctx, id)
		}
		st.Restarts++
	}
	r.mu.Lock()
	l := r.leases[id]
	r.mu.Unlock()
	if l == nil {
		if l, err = r.cfg.Cache.Acquire(ctx, d.Release, d.TreeDigest); err != nil {
			return hostapi.Observed{}, err
		}
		r.mu.Lock()
		r.leases[id] = l
		r.mu.Unlock()
	}
	fail := func(err error) (hostapi.Observed, error) {
		if !restart {
			r.teardownLocked(id, d)
		}
		return hostapi.Observed{}, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fail(err)
	}
	if err := writeJSON(filepath.Join(dir, "desired.json"), d); err != nil {
		return fail(err)
	}
	if !restart {
		st = instState{TreeDigest: l.TreeDigest}
		if err := writeJSON(filepath.Join(dir, "state.json"), st); err != nil {
			return fail(err)
		}
	}
	tLease := time.Now()
	type added struct {
		ip  net.IP
		err error
	}
	addc := make(chan added, 1)
	// A spare namespace of the pool has its address already. Without
	// one, the namespace first; its address comes while the driver
	// starts (the app may bind :PORT before eth0 is up; nothing waits on
	// it).
	ip, ok, err := r.cfg.Net.Take(id, d.Egress)
	if err != nil {
		r.cfg.Log.Warn("network namespace pool", "id", id, "err", err)
	}
	if ok {
		addc <- added{ip, nil}
	} else {
		if err := r.cfg.Net.Create(id); err != nil {
			return fail(err)
		}
		go func() {
			ip, err := r.cfg.Net.Add(ctx, id, d.Egress)
			addc <- added{ip, err}
		}()
	}
	tNet := time.Now()
	root := r.root(id, d)
	if err := root.Mount(r.files(id, d.Egress)); err != nil {
		<-addc
		return fail(err)
	}
	tRoot := time.Now()
	st.StartedAt = time.Now().UTC()
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/", "PORT=" + strconv.Itoa(d.Port)}
	keys := make([]string, 0, len(d.Env))
	for k := range d.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+d.Env[k])
	}
	err = r.cfg.Driver.Start(ctx, Spec{
		ID: id, Dir: dir, Root: root.Merged(), NetNS: r.cfg.Net.Path(id), Log: r.logPath(id),
		Args: d.Cmd, Env: env, Cwd: d.Workdir, User: d.User, Limits: d.Limits,
	})
	a := <-addc
	if err == nil {
		err = a.err
	}
	if err == nil {
		st.Addr = net.JoinHostPort(a.ip.String(), strconv.Itoa(d.Port))
		err = writeJSON(filepath.Join(dir, "state.json"), st)
	}
	if err != nil {
		if !restart {
			r.cfg.Driver.Delete(ctx, id, true)
		}
		return fail(err)
	}
	r.cfg.Log.Debug("instance started", "id", id, "release", time.Duration(tLease.Sub(t0)),
		"netns", tNet.Sub(tLease), "root", tRoot.Sub(tNet), "driver", time.Since(tRoot))
	return hostapi.Observed{ID: id, State: hostapi.StateStarting, Addr: st.Addr, TreeDigest: st.TreeDigest, StartedAt: st.StartedAt, Restarts: st.Restarts}, nil
}

// files are what cairn adds to an instance's root, in its upper layer.
// The instance's own name is 127.0.1.1, as Debian has it, so the files
// need not wait for its address.
func (r *Runtime) files(id string, egress bool) map[string][]byte {
	hosts := fmt.Sprintf("127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n", id)
	resolv := "# cairn: this instance has no egress\n"
	if egress {
		resolv = ""
		for _, ns := range r.cfg.Nameservers {
			resolv += "nameserver " + ns + "\n"
		}
	}
	return map[string][]byte{"etc/hosts": []byte(hosts), "etc/resolv.conf": []byte(resolv), "etc/hostname": []byte(id + "\n")}
}

// hostNameservers are the host's resolvers an instance can reach (not
// the host's loopback ones); 1.1.1.1 if there is none.
func hostNameservers() []string {
	var out []string
	b, _ := os.ReadFile("/etc/resolv.conf")
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "nameserver" {
			if ip := net.ParseIP(f[1]); ip != nil && !ip.IsLoopback() {
				out = append(out, f[1])
			}
		}
	}
	if len(out) == 0 {
		out = []string{"1.1.1.1"}
	}
	return out
}

// observe reports one instance; call with its lock held.
func (r *Runtime) observe(ctx context.Context, id string) (hostapi.Observed, error) {
	_, st, err := r.load(id)
	if err != nil {
		return hostapi.Observed{}, err
	}
	o := hostapi.Observed{ID: id, Addr: st.Addr, TreeDigest: st.TreeDigest, StartedAt: st.StartedAt, Restarts: st.Restarts}
	if st.Stopping {
		o.State = hostapi.StateStopping
		return o, nil
	}
	s, err := r.cfg.Driver.Status(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		o.State = hostapi.StateStopped
	case err != nil:
		return o, err
	case s.Running:
		o.State = hostapi.StateStarting // health is the agent's to judge
	default:
		o.State, o.ExitCode = hostapi.StateStopped, s.ExitCode
	}
	return o, nil
}

// List implements hostapi.Runtime.
func (r *Runtime) List(ctx context.Context) ([]hostapi.Observed, error) {
	des, err := os.ReadDir(filepath.Join(r.cfg.Dir, "instances"))
	if err != nil {
		return nil, err
	}
	var out []hostapi.Observed
	for _, de := range des {
		o, err := r.observe(ctx, de.Name())
		if errors.Is(err, os.ErrNotExist) {
			continue // made or removed just now
		}
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// Stop implements hostapi.Runtime: SIGTERM, SIGKILL after grace, then
// the root, the network and the lease go in the background.
func (r *Runtime) Stop(ctx context.Context, id string, grace time.Duration) error {
	unlock := r.lock(id)
	defer unlock()
	_, st, err := r.load(id)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Stopping {
		return nil
	}
	if err := r.cfg.Driver.Signal(ctx, id, syscall.SIGTERM); err == nil {
		deadline := time.Now().Add(grace)
		for time.Now().Before(deadline) {
			if s, err := r.cfg.Driver.Status(ctx, id); err != nil || !s.Running {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if s, err := r.cfg.Driver.Status(ctx, id); err == nil && s.Running {
			r.cfg.Driver.Signal(ctx, id, syscall.SIGKILL)
		}
	}
	st.Stopping = true
	if err := writeJSON(filepath.Join(r.dir(id), "state.json"), st); err != nil {
		return err
	}
	r.teardown(id)
	return nil
}

// teardown removes an instance in the background.
func (r *Runtime) teardown(id string) {
	r.tear.Add(1)
	go func() {
		defer r.tear.Done()
		defer r.lock(id)()
		d, _, err := r.load(id)
		if err != nil {
			return
		}
		r.teardownLocked(id, d)
	}()
}

// teardownLocked deletes the driver's instance, unmounts and removes the
// root, releases the address and the lease; call with id's lock held.
func (r *Runtime) teardownLocked(id string, d hostapi.Desired) {
	ctx := context.Background()
	log := r.cfg.Log.With("id", id)
	if err := r.cfg.Driver.Delete(ctx, id, true); err != nil {
		log.Warn("driver delete", "err", err)
	}
	if err := r.root(id, d).Remove(); err != nil {
		log.Warn("remove root", "err", err)
	}
	if err := r.cfg.Net.Del(ctx, id, d.Egress); err != nil {
		log.Warn("release network", "err", err)
	}
	r.mu.Lock()
	if l := r.leases[id]; l != nil {
		l.Release()
		delete(r.leases, id)
	}
	r.mu.Unlock()
	if err := os.RemoveAll(r.dir(id)); err != nil {
		log.Warn("remove instance directory", "err", err)
	}
}

// Settle waits for the teardowns under way to end, then for the refill
// of the network namespace pool.
func (r *Runtime) Settle() {
	r.tear.Wait()
	r.cfg.Net.Settle()
}

// Logs implements hostapi.Runtime.
func (r *Runtime) Logs(ctx context.Context, id string, follow bool, w io.Writer) error {
	if _, err := os.Stat(r.dir(id)); err != nil {
		return fmt.Errorf("instance %s: %w", id, ErrNotFound)
	}
	if b, err := os.ReadFile(r.logPath(id) + ".1"); err == nil {
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	f, err := os.Open(r.logPath(id))
	if errors.Is(err, os.ErrNotExist) && !follow {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	var off int64
	for {
		n, err := io.Copy(w, f)
		off += n
		if err != nil || !follow {
			return err
		}
		if fi, err := f.Stat(); err == nil && fi.Size() < off { // rotated
			f.Seek(0, io.SeekStart)
			off = 0
		}
		if s, err := r.cfg.Driver.Status(ctx, id); err != nil || !s.Running {
			_, err := io.Copy(w, f)
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// rotateLoop keeps every instance's log under MaxLog: past it, the log is
// copied to log.1 and truncated (the instance appends, so it goes on at
// the start). Lines written between the copy and the truncation are lost.
func (r *Runtime) rotateLoop() {
	defer r.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-r.done:
			return
		case <-t.C:
		}
		des, _ := os.ReadDir(filepath.Join(r.cfg.Dir, "instances"))
		for _, de := range des {
			if err := rotate(r.logPath(de.Name()), r.cfg.MaxLog); err != nil {
				r.cfg.Log.Warn("rotate log", "id", de.Name(), "err", err)
			}
		}
	}
}

func rotate(p string, max int64) error {
	fi, err := os.Stat(p)
	if err != nil || fi.Size() <= max {
		return nil
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if int64(len(b)) > max {
		b = b[int64(len(b))-max:]
	}
	if err := os.WriteFile(p+".1", b, 0o600); err != nil {
		return err
	}
	return os.Truncate(p, 0)
}
