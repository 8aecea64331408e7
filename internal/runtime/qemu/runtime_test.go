package qemu_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/hostapi"
	"github.com/cairnhq/cairn/internal/metrics"
	cruntime "github.com/cairnhq/cairn/internal/runtime"
	"github.com/cairnhq/cairn/internal/runtime/cache"
	"github.com/cairnhq/cairn/internal/runtime/runtimetest"
)

// TestRuntimeMicroVM: the static Go server, published as a rootfs release,
// runs on a Runtime with the qemu-microvm driver (cache, overlay root,
// network namespace, as with runc) and answers HTTP at its address on the
// host bridge; it has no egress; its console is its log; a Stop powers it
// down through QMP. One boot.
func TestRuntimeMicroVM(t *testing.T) {
	dir := t.TempDir()
	d := newDriver(t, dir)
	art := runtimetest.Serve(t)
	res, b := runtimetest.Pack(t, runtimetest.ProbeRoot(t))
	art.Add(res.SHA256, b)
	c, err := cache.Open(filepath.Join(dir, "cache"), &cache.HTTP{Base: art.URL, Token: "test-token"}, cache.Options{Metrics: metrics.New()})
	if err != nil {
		t.Fatal(err)
	}
	nets := runtimetest.Net(t, filepath.Join(dir, "net"))
	rt, err := cruntime.New(context.Background(), cruntime.Config{Dir: dir, Cache: c, Net: nets, Driver: d})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	if rt.Driver() != "qemu-microvm" || rt.Isolation() != hostapi.IsolationMicroVM {
		t.Fatalf("driver %s, isolation %s", rt.Driver(), rt.Isolation())
	}
	ctx := context.Background()
	t0 := time.Now()
	o, err := rt.Start(ctx, hostapi.Desired{
		ID: "vm-probe-1", Release: res.SHA256, TreeDigest: res.TOC.TreeSHA256,
		Cmd: []string{"/probe"}, Env: map[string]string{"GREETING": "from a vm"}, Port: 8080,
		Limits: hostapi.Limits{CPU: 1, MemoryBytes: 192 << 20},
	})
	if err != nil {
		t.Fatal(err)
	}
	if body := runtimetest.WaitHTTP(t, "http://"+o.Addr+"/", tcgBoot); body != "ok from a vm\n" {
		t.Fatalf("body %q", body)
	}
	t.Logf("booted to the first answer in %v (accel %s)", time.Since(t0), d.Accel())
	if got, _ := runtimetest.Get("http://" + o.Addr + "/dial?addr=1.1.1.1:53"); !strings.Contains(got, "unreachable") {
		t.Errorf("dial beyond the bridge without egress: %q", got)
	}
	// The log, followed until the VM ends (the directory goes after Stop).
	var log bytes.Buffer
	logged := make(chan error, 1)
	go func() { logged <- rt.Logs(ctx, o.ID, true, &log) }()
	if err := rt.Stop(ctx, o.ID, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := <-logged; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "cairn-guest: power button: stopping the app") || !strings.Contains(log.String(), "cairn-guest: exit ") {
		t.Errorf("console log lacks the power-down and the exit line:\n%s", log.String())
	}
	rt.Settle()
}
