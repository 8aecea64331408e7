package netns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The pool: spare namespaces made ahead of time, each with its address,
// so that an instance's start takes one (Take) instead of waiting for CNI
// ADD, which costs a start tens of milliseconds of CPU. A spare's CNI
// container id is its pool name ("pool_n_…" without egress, "pool_e_…"
// with; instance ids have no "_", so the names never meet). Take binds
// the spare's namespace at the instance's Path and records the pool name
// in alias/ID, where Del finds the container id that releases the
// address. A refill runs in the background once no Take came for
// PoolDelay (a burst of starts is not slowed by it), on a thread at nice
// 19 whose CNI plugins inherit the priority.
// Spares left by an earlier process are released by New; Close releases
// the pool's.

type pool struct {
	mu      sync.Mutex
	spare   map[bool][]string // egress → pool names, ready
	want    map[bool]bool     // the modes that were ever taken (or prefilled)
	filling bool
	timer   *time.Timer // the refill after PoolDelay, counted in wg
	seq     int
	closed  bool
	err     error          // the last refill's error, until one succeeds
	wg      sync.WaitGroup // the refill
}

func poolName(egress bool, seq int) string {
	mode := "n"
	if egress {
		mode = "e"
	}
	return fmt.Sprintf("pool_%s_%d_%d", mode, os.Getpid(), seq)
}

func (m *Manager) aliasPath(id string) string { return filepath.Join(m.cfg.Dir, "alias", id) }

// cid is the CNI container id of id's address: its pool name if it
// came from the pool, else id itself.
func (m *Manager) cid(id string) string {
	if b, err := os.ReadFile(m.aliasPath(id)); err == nil {
		return strings.TrimSpace(string(b))
	}
	return id
}

// reclaim releases the spares an earlier process left in Dir/ns.
func (m *Manager) reclaim(ctx context.Context) error {
	des, err := os.ReadDir(filepath.Join(m.cfg.Dir, "ns"))
	if err != nil {
		return err
	}
	var errs []error
	for _, de := range des {
		if n := de.Name(); strings.HasPrefix(n, "pool_") {
			errs = append(errs, m.Del(ctx, n, strings.HasPrefix(n, "pool_e_")))
		}
	}
	return errors.Join(errs...)
}

// Take gives id a spare namespace of the pool, with its address, bound
// at Path(id). ok is false, and nothing is done, when the pool is off or
// has no spare of that mode, or when id has a namespace already: then
// Create and Add as without a pool. A Take starts a refill.
func (m *Manager) Take(id string, egress bool) (ip net.IP, ok bool, err error) {
	if m.cfg.Pool <= 0 {
		return nil, false, nil
	}
	p := &m.pool
	p.mu.Lock()
	p.want[egress] = true
	var name string
	if s := p.spare[egress]; len(s) > 0 {
		name, p.spare[egress] = s[0], s[1:]
	}
	p.mu.Unlock()
	defer m.refillLater()
	if name == "" {
		return nil, false, nil
	}
	if _, err := os.Stat(m.Path(id)); err == nil {
		m.putBack(egress, name)
		return nil, false, nil
	}
	conf, err := m.conf(egress)
	if err != nil {
		m.putBack(egress, name)
		return nil, false, err
	}
	res, err := m.cni.GetNetworkListCachedResult(conf, m.rt(name))
	if err != nil || res == nil || firstIP(res) == nil {
		m.Del(context.Background(), name, egress)
		return nil, false, fmt.Errorf("pool namespace %s has no cached address: %v", name, err)
	}
	ip = firstIP(res)
	if err := writeFile(m.aliasPath(id), name); err != nil {
		m.putBack(egress, name)
		return nil, false, err
	}
	if err := m.rebind(name, id); err != nil {
		os.Remove(m.aliasPath(id))
		m.putBack(egress, name)
		return nil, false, err
	}
	return ip, true, nil
}

func (m *Manager) putBack(egress bool, name string) {
	m.pool.mu.Lock()
	m.pool.spare[egress] = append(m.pool.spare[egress], name)
	m.pool.mu.Unlock()
}

// rebind binds the namespace bound at Path(from) at Path(to) too, then
// unbinds it from Path(from).
func (m *Manager) rebind(from, to string) error {
	f, err := os.OpenFile(m.Path(to), os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return err
	}
	f.Close()
	if err := unix.Mount(m.Path(from), m.Path(to), "", unix.MS_BIND, ""); err != nil {
		os.Remove(m.Path(to))
		return fmt.Errorf("bind netns %s at %s: %w", from, to, err)
	}
	return m.unbind(from)
}

func writeFile(p, s string) error {
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// refillLater (re)schedules a refill PoolDelay from now.
func (m *Manager) refillLater() {
	p := &m.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	if p.timer != nil && p.timer.Stop() {
		p.wg.Done() // the one it replaces
	}
	p.wg.Add(1)
	p.timer = time.AfterFunc(m.cfg.PoolDelay, func() {
		defer p.wg.Done()
		m.refill()
	})
}

// refillNow runs a scheduled refill at once.
func (m *Manager) refillNow() {
	p := &m.pool
	p.mu.Lock()
	pending := p.timer != nil && p.timer.Stop()
	p.timer = nil
	p.mu.Unlock()
	if pending {
		m.refill()
		p.wg.Done()
	}
}

// refill starts filling the pool up to Pool spares of every wanted mode,
// unless a refill runs.
func (m *Manager) refill() {
	p := &m.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.filling || p.closed {
		return
	}
	p.filling = true
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		// The plugins are children of this thread and inherit its
		// priority; the thread is never unlocked, so it ends with the
		// goroutine and no other goroutine runs at nice 19.
		runtime.LockOSThread()
		unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), 19)
		for {
			p.mu.Lock()
			var egress, need bool
			for _, e := range []bool{false, true} {
				if p.want[e] && len(p.spare[e]) < m.cfg.Pool {
					egress, need = e, true
					break
				}
			}
			if !need || p.closed {
				p.filling = false
				p.mu.Unlock()
				return
			}
			p.seq++
			name := poolName(egress, p.seq)
			p.mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			_, err := m.Add(ctx, name, egress)
			cancel()
			p.mu.Lock()
			p.err = err
			if err == nil && !p.closed {
				p.spare[egress] = append(p.spare[egress], name)
			}
			closed := p.closed
			if err != nil || closed {
				p.filling = false
			}
			p.mu.Unlock()
			if err == nil && closed {
				m.Del(context.Background(), name, egress)
			}
			if err != nil || closed {
				return // the next Take tries again
			}
		}
	}()
}

// Prefill fills the pool with spares of one mode ahead of the first
// start that wants one; Settle waits for it.
func (m *Manager) Prefill(egress bool) {
	if m.cfg.Pool <= 0 {
		return
	}
	m.pool.mu.Lock()
	m.pool.want[egress] = true
	m.pool.mu.Unlock()
	m.refill()
}

// Settle runs a scheduled refill at once and waits for it (and any under
// way); it returns the refill's error.
func (m *Manager) Settle() error {
	m.refillNow()
	m.pool.wg.Wait()
	m.pool.mu.Lock()
	defer m.pool.mu.Unlock()
	return m.pool.err
}

// Spares is how many spare namespaces of a mode are ready.
func (m *Manager) Spares(egress bool) int {
	m.pool.mu.Lock()
	defer m.pool.mu.Unlock()
	return len(m.pool.spare[egress])
}

// Close releases the pool's spares (their addresses and namespaces);
// the instances' namespaces are left as they are.
func (m *Manager) Close() error {
	p := &m.pool
	p.mu.Lock()
	p.closed = true
	if p.timer != nil && p.timer.Stop() {
		p.wg.Done()
	}
	p.timer = nil
	p.mu.Unlock()
	p.wg.Wait()
	p.mu.Lock()
	spare := p.spare
	p.spare = map[bool][]string{}
	p.mu.Unlock()
	var errs []error
	for egress, names := range spare {
		for _, n := range names {
			errs = append(errs, m.Del(context.Background(), n, egress))
		}
	}
	return errors.Join(errs...)
}
