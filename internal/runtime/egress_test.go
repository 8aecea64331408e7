package runtime_test

import (
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/internal/runtime/runtimetest"
)

// TestEgress: with egress, an instance reaches an address beyond its
// bridge (the host's own address on another interface stands for the
// world); without, the same dial is unreachable.
func TestEgress(t *testing.T) {
	h := newHost(t)
	var outside net.IP
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback != 0 || i.Flags&net.FlagUp == 0 || strings.HasPrefix(i.Name, "ct") || strings.HasPrefix(i.Name, "cairn") || strings.HasPrefix(i.Name, "veth") {
			continue
		}
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
				outside = n.IP
			}
		}
	}
	if outside == nil {
		t.Fatal("no non-loopback IPv4 address on this host")
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(outside.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go http.Serve(ln, http.NotFoundHandler())
	res := h.publish(runtimetest.ProbeRoot(t))
	on := probeDesired("egress-on", res)
	on.Egress = true
	oOn := h.start(on)
	oOff := h.start(probeDesired("egress-off", res))
	if got := get(t, oOn, "/dial?addr="+ln.Addr().String()); got != "connected" {
		t.Fatalf("with egress: %q", got)
	}
	if got := get(t, oOff, "/dial?addr="+ln.Addr().String()); !strings.Contains(got, "unreachable") {
		t.Fatalf("without egress: %q", got)
	}
	if got := get(t, oOn, "/read?path=/etc/resolv.conf"); !strings.Contains(got, "nameserver") {
		t.Fatalf("resolv.conf with egress: %q", got)
	}
}
