package vmguest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// The links the driver adds to an instance's network namespace: the VM's
// tap and a bridge joining it to the namespace's eth0 (the veth CNI made
// to the host bridge). The VM takes over eth0's address.
const (
	TapName    = "tap0"
	bridgeName = "br0"
)

// Net is what the guest gets: eth0's address, the gateway (when the
// namespace had a default route, i.e. egress) and a MAC of its own.
type Net struct {
	Addr    string `json:"addr"` // CIDR
	Gateway string `json:"gateway,omitempty"`
	MAC     string `json:"mac"`
}

// plumb readies the namespace at nsPath for a VM, once: it waits for
// eth0's IPv4 address (CNI ADD may run while the driver starts), moves
// the address off eth0, and bridges eth0 with a new persistent tap. A
// namespace plumbed before (a restart in place) gives back what saved
// holds.
func plumb(ctx context.Context, nsPath, saved string) (Net, error) {
	if b, err := os.ReadFile(saved); err == nil {
		var n Net
		if err := json.Unmarshal(b, &n); err == nil && n.Addr != "" {
			return n, nil
		}
	}
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return Net{}, fmt.Errorf("network namespace %s: %w", nsPath, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return Net{}, err
	}
	defer h.Close()
	var eth netlink.Link
	var addr netlink.Addr
	for {
		if eth, err = h.LinkByName("eth0"); err == nil {
			as, _ := h.AddrList(eth, netlink.FAMILY_V4)
			if len(as) > 0 {
				addr = as[0]
				break
			}
		}
		select {
		case <-ctx.Done():
			return Net{}, fmt.Errorf("eth0 of %s has no address: %w", nsPath, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	n := Net{Addr: addr.IPNet.String(), MAC: mac(addr.IP)}
	routes, err := h.RouteList(eth, netlink.FAMILY_V4)
	if err != nil {
		return Net{}, err
	}
	for _, r := range routes {
		if (r.Dst == nil || r.Dst.IP.IsUnspecified()) && r.Gw != nil {
			n.Gateway = r.Gw.String()
		}
	}
	if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: bridgeName, MTU: eth.Attrs().MTU}}); err != nil && !errors.Is(err, os.ErrExist) {
		return Net{}, fmt.Errorf("bridge: %w", err)
	}
	br, err := h.LinkByName(bridgeName)
	if err != nil {
		return Net{}, err
	}
	if err := inNS(ns, func() error {
		tap := &netlink.Tuntap{LinkAttrs: netlink.LinkAttrs{Name: TapName, MTU: eth.Attrs().MTU}, Mode: netlink.TUNTAP_MODE_TAP,
			Flags: netlink.TUNTAP_ONE_QUEUE | netlink.TUNTAP_NO_PI | netlink.TUNTAP_VNET_HDR}
		return netlink.LinkAdd(tap)
	}); err != nil && !errors.Is(err, os.ErrExist) {
		return Net{}, fmt.Errorf("tap: %w", err)
	}
	tap, err := h.LinkByName(TapName)
	if err != nil {
		return Net{}, err
	}
	if err := h.AddrDel(eth, &addr); err != nil {
		return Net{}, fmt.Errorf("eth0 address: %w", err)
	}
	for _, l := range []netlink.Link{eth, tap} {
		if err := h.LinkSetMasterByIndex(l, br.Attrs().Index); err != nil {
			return Net{}, fmt.Errorf("%s into %s: %w", l.Attrs().Name, bridgeName, err)
		}
	}
	for _, l := range []netlink.Link{br, tap, eth} {
		if err := h.LinkSetUp(l); err != nil {
			return Net{}, fmt.Errorf("%s up: %w", l.Attrs().Name, err)
		}
	}
	b, _ := json.Marshal(n)
	if err := os.WriteFile(saved, b, 0o600); err != nil {
		return Net{}, err
	}
	return n, nil
}

// inNS runs f on a thread in ns. If the thread cannot go back to its
// own namespace it stays locked, and so ends with the goroutine.
func inNS(ns netns.NsHandle, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			errc <- err
			return
		}
		errc <- f()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
	}()
	return <-errc
}

// mac is the VM's MAC: locally administered, from its address, so that
// VMs on one host bridge never share one.
func mac(ip net.IP) string {
	v4 := ip.To4()
	return fmt.Sprintf("02:ca:%02x:%02x:%02x:%02x", v4[0], v4[1], v4[2], v4[3])
}
