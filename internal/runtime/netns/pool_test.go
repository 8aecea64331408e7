package netns_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/internal/runtime/netns"
	"github.com/cairnhq/cairn/internal/runtime/runtimetest"
)

// held lists the addresses host-local keeps in dir.
func held(t *testing.T, dir string) []string {
	t.Helper()
	ips, _ := filepath.Glob(filepath.Join(dir, "ipam", "*", "10.*"))
	for i, p := range ips {
		ips[i] = filepath.Base(p)
	}
	return ips
}

// addrIn is eth0's IPv4 address inside the namespace bound at path.
func addrIn(t *testing.T, path string) string {
	t.Helper()
	out, err := exec.Command("nsenter", "--net="+path, "ip", "-4", "-o", "addr", "show", "eth0").CombinedOutput()
	if err != nil {
		t.Fatalf("nsenter %s: %v: %s", path, err, out)
	}
	return string(out)
}

func TestPool(t *testing.T) {
	runtimetest.Need(t)
	ctx := context.Background()
	dir := t.TempDir()
	cfg := runtimetest.NetConfig(t, dir)
	cfg.Pool = 2
	m, err := netns.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m.Prefill(false)
	if err := m.Settle(); err != nil {
		t.Fatal(err)
	}
	if n := m.Spares(false); n != 2 || len(held(t, dir)) != 2 {
		t.Fatalf("prefilled: %d spares, addresses %v", n, held(t, dir))
	}

	ip, ok, err := m.Take("inst-1", false)
	if err != nil || !ok {
		t.Fatalf("Take: %v %v", ok, err)
	}
	if n := m.Spares(false); n != 1 { // the refill waits for PoolDelay (1 s)
		t.Fatalf("refilled at once: %d spares", n)
	}
	if got := addrIn(t, m.Path("inst-1")); !strings.Contains(got, " "+ip.String()+"/") {
		t.Fatalf("namespace at Path has %q, Take said %s", got, ip)
	}
	// Add of a taken id answers its address again, as for any instance.
	if again, err := m.Add(ctx, "inst-1", false); err != nil || !again.Equal(ip) {
		t.Fatalf("Add after Take: %v %v, want %s", again, err, ip)
	}
	// A second Take of one id does nothing: it has its namespace.
	if _, ok, err := m.Take("inst-1", false); ok || err != nil {
		t.Fatalf("second Take: %v %v", ok, err)
	}
	if err := m.Settle(); err != nil {
		t.Fatal(err)
	}
	if n := m.Spares(false); n != 2 || len(held(t, dir)) != 3 {
		t.Fatalf("refilled: %d spares, addresses %v", n, held(t, dir))
	}
	// With egress: a mode of its own, filled on first demand.
	if _, ok, err := m.Take("inst-2", true); ok || err != nil {
		t.Fatalf("first Take with egress: %v %v", ok, err)
	}
	m.Settle()
	ip2, ok, err := m.Take("inst-2", true)
	if err != nil || !ok {
		t.Fatalf("Take with egress: %v %v", ok, err)
	}
	route, _ := exec.Command("nsenter", "--net="+m.Path("inst-2"), "ip", "route").CombinedOutput()
	if !strings.Contains(string(route), "default") {
		t.Fatalf("egress namespace without a default route: %s", route)
	}

	// Del releases the address the pool gave, by its pool name.
	for id, ip := range map[string]net.IP{"inst-1": ip, "inst-2": ip2} {
		if err := m.Del(ctx, id, id == "inst-2"); err != nil {
			t.Fatal(err)
		}
		for _, h := range held(t, dir) {
			if h == ip.String() {
				t.Fatalf("%s still held after Del", ip)
			}
		}
	}
	if _, err := os.Stat(m.Path("inst-1")); err == nil {
		t.Fatal("namespace left after Del")
	}
	m.Settle()

	// A new process's Manager releases the spares an earlier one left.
	m2, err := netns.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if h := held(t, dir); len(h) != 0 {
		t.Fatalf("spares of an earlier process still hold %v", h)
	}
	m.Close() // its spares are gone already: nothing to do, no error
	m2.Prefill(false)
	m2.Settle()
	if len(held(t, dir)) != 2 {
		t.Fatalf("prefill: %v", held(t, dir))
	}
	if err := m2.Close(); err != nil {
		t.Fatal(err)
	}
	ns, _ := os.ReadDir(filepath.Join(dir, "ns"))
	alias, _ := os.ReadDir(filepath.Join(dir, "alias"))
	if h := held(t, dir); len(h) != 0 || len(ns) != 0 || len(alias) != 0 {
		t.Fatalf("after Close: addresses %v, namespaces %d, aliases %d", h, len(ns), len(alias))
	}
	// A closed pool gives nothing.
	if _, ok, _ := m2.Take("inst-3", false); ok {
		t.Fatal("Take from a closed pool")
	}
}

func TestNoPool(t *testing.T) {
	runtimetest.Need(t)
	m := runtimetest.Net(t, t.TempDir())
	if _, ok, err := m.Take("inst-1", false); ok || err != nil {
		t.Fatalf("Take without a pool: %v %v", ok, err)
	}
	if err := m.Settle(); err != nil || m.Spares(false) != 0 {
		t.Fatalf("a Manager without a pool made spares: %v", err)
	}
}
