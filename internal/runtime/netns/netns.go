// Package netns gives each instance a network namespace of its own with
// an address on a host bridge, through CNI: the bridge and host-local
// plugins of the distribution's containernetworking-plugins package,
// driven by libcni. An instance is reached from the host (and so the
// router) at its bridge address, never on the host's loopback. Egress is
// per instance: with it the namespace has a default route through the
// bridge and its traffic is masqueraded; without it the namespace has
// only the bridge's subnet, so nothing beyond the host's bridge is
// reachable (the instance lacks CAP_NET_ADMIN to add a route).
package netns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
	"golang.org/x/sys/unix"
)

// Config of the host network.
type Config struct {
	Bridge    string        // "cairn0"
	Subnet    string        // "10.89.0.0/16"
	PluginDir []string      // default /usr/lib/cni, /opt/cni/bin
	Dir       string        // where namespaces are bound and host-local keeps its leases
	Pool      int           // spare namespaces kept ready per egress mode (pool.go); 0: none
	PoolDelay time.Duration // quiet time after a Take before the pool is refilled; 0: 1 s
}

// Manager makes and removes instance namespaces.
type Manager struct {
	cfg  Config
	cni  *libcni.CNIConfig
	pool pool
}

// New returns a Manager.
func New(cfg Config) (*Manager, error) {
	if cfg.Bridge == "" {
		cfg.Bridge = "cairn0"
	}
	if cfg.Subnet == "" {
		cfg.Subnet = "10.89.0.0/16"
	}
	if cfg.PoolDelay <= 0 {
		cfg.PoolDelay = time.Second
	}
	if len(cfg.PluginDir) == 0 {
		cfg.PluginDir = []string{"/usr/lib/cni", "/opt/cni/bin"}
	}
	for _, d := range []string{"ns", "ipam", "cache", "alias"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	// The exec is given, not left to libcni: it fills a nil one lazily,
	// unguarded, and Add runs from several goroutines.
	exec := &invoke.DefaultExec{RawExec: &invoke.RawExec{Stderr: os.Stderr}, PluginDecoder: version.PluginDecoder{}}
	m := &Manager{cfg: cfg, cni: libcni.NewCNIConfigWithCacheDir(cfg.PluginDir, filepath.Join(cfg.Dir, "cache"), exec)}
	m.pool.spare, m.pool.want = map[bool][]string{}, map[bool]bool{}
	if err := m.reclaim(context.Background()); err != nil {
		return nil, fmt.Errorf("release spare namespaces of an earlier process: %w", err)
	}
	return m, nil
}

// Path is where id's namespace is bound.
func (m *Manager) Path(id string) string { return filepath.Join(m.cfg.Dir, "ns", id) }

func (m *Manager) conf(egress bool) (*libcni.NetworkConfigList, error) {
	routes := `[]`
	if egress {
		routes = `[{"dst":"0.0.0.0/0"}]`
	}
	js := fmt.Sprintf(`{"cniVersion":"1.0.0","name":"cairn","plugins":[{"type":"bridge","bridge":%q,"isGateway":true,"ipMasq":%t,"hairpinMode":false,
"ipam":{"type":"host-local","dataDir":%q,"ranges":[[{"subnet":%q}]],"routes":%s}}]}`,
		m.cfg.Bridge, egress, filepath.Join(m.cfg.Dir, "ipam"), m.cfg.Subnet, routes)
	return libcni.ConfListFromBytes([]byte(js))
}

func (m *Manager) rt(id string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: m.cid(id), NetNS: m.Path(id), IfName: "eth0"}
}

// Add makes id's namespace if it does not exist and gives it an address;
// it returns the address. Adding an id that has one returns it again.
func (m *Manager) Add(ctx context.Context, id string, egress bool) (net.IP, error) {
	conf, err := m.conf(egress)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(m.Path(id)); err == nil {
		if res, err := m.cni.GetNetworkListCachedResult(conf, m.rt(id)); err == nil && res != nil {
			if ip := firstIP(res); ip != nil {
				return ip, nil
			}
		}
	} else if err := m.Create(id); err != nil {
		return nil, err
	}
	res, err := m.cni.AddNetworkList(ctx, conf, m.rt(id))
	if err != nil {
		m.unbind(id)
		return nil, fmt.Errorf("cni add %s: %w", id, err)
	}
	ip := firstIP(res)
	if ip == nil {
		m.Del(ctx, id, egress)
		return nil, fmt.Errorf("cni add %s: no IPv4 address", id)
	}
	return ip, nil
}

func firstIP(r types.Result) net.IP {
	res, err := types100.GetResult(r)
	if err != nil {
		return nil
	}
	for _, ip := range res.IPs {
		if v4 := ip.Address.IP.To4(); v4 != nil {
			return v4
		}
	}
	return nil
}

// Del removes id's address and namespace. It is safe to call twice.
func (m *Manager) Del(ctx context.Context, id string, egress bool) error {
	conf, err := m.conf(egress)
	if err != nil {
		return err
	}
	rt := m.rt(id)
	if _, err := os.Stat(m.Path(id)); err != nil {
		rt.NetNS = "" // the namespace is gone: release the address all the same
	}
	delErr := m.cni.DelNetworkList(ctx, conf, rt)
	errs := []error{delErr, m.unbind(id)}
	if delErr == nil { // the alias names the address until it is released
		if err := os.Remove(m.aliasPath(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Create makes id's network namespace, without an address (Add gives
// it one), and binds it at Path(id), on a thread that is thrown away
// afterwards (it stays locked and ends). An existing one is kept.
func (m *Manager) Create(id string) error { return m.create(id, false) }

// Isolated makes id's network namespace with its loopback up and
// nothing else: no address on the bridge, no route, so nothing outside
// the namespace is reachable (a build's network). Remove removes it. An
// existing one is kept as it is.
func (m *Manager) Isolated(id string) error { return m.create(id, true) }

// Remove unbinds id's namespace (one Isolated made; Del also releases
// an address). Removing one that does not exist is not an error.
func (m *Manager) Remove(id string) error { return m.unbind(id) }

func (m *Manager) create(id string, loopback bool) error {
	p := m.Path(id)
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	f.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare netns: %w", err)
			return
		}
		if loopback {
			if err := loopbackUp(); err != nil {
				errc <- err
				return
			}
		}
		self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(self, p, "", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("bind netns: %w", err)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		os.Remove(p)
		return err
	}
	return nil
}

// loopbackUp sets lo up in the calling thread's network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback up: %w", err)
	}
	return nil
}

func (m *Manager) unbind(id string) error {
	p := m.Path(id)
	if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
		return fmt.Errorf("unmount netns %s: %w", id, err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
