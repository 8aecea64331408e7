package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cairnhq/cairn/internal/hostapi"
	"github.com/cairnhq/cairn/internal/metrics"
	"github.com/cairnhq/cairn/internal/release"
	cruntime "github.com/cairnhq/cairn/internal/runtime"
	"github.com/cairnhq/cairn/internal/runtime/cache"
	"github.com/cairnhq/cairn/internal/runtime/netns"
	"github.com/cairnhq/cairn/internal/runtime/runc"
)

// instancesBench times "start requested" to the first HTTP answer of a
// static Go server in an otherwise empty root, 50 starts with a warm
// cache, against a plain `runc run -d` of a hand-made bundle of the same
// tree (its network namespace and address made beforehand, outside the
// timing), alternating with the same plain run of cairn's config.json
// and with cairn without its namespace pool; p50 and p99 of each, and
// the cold-cache start.
// Runs as root with runc and the CNI plugins.
func instancesBench() error {
	starts := 50
	if n, err := strconv.Atoi(os.Getenv("BENCH_STARTS")); err == nil {
		starts = n
	}
	if os.Getuid() != 0 {
		return fmt.Errorf("the instances benchmark runs as root")
	}
	if err := ensure(map[string]string{"runc": "runc"}); err != nil {
		return err
	}
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		if err := run("", "apt-get", "install", "-y", "-qq", "containernetworking-plugins"); err != nil {
			return err
		}
	}
	ctx := context.Background()
	work, err := workDir()
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	// The release: the probe server alone in a root.
	tree := filepath.Join(work, "tree")
	os.MkdirAll(tree, 0o755)
	_, self, _, _ := runtime.Caller(0)
	build := exec.Command("go", "build", "-o", filepath.Join(tree, "probe"), "./internal/runtime/testdata/probe")
	build.Dir = filepath.Dir(filepath.Dir(self))
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build probe: %v\n%s", err, out)
	}
	var art bytes.Buffer
	res, err := release.PackRootfsDir(ctx, tree, &art, release.RootfsOptions{})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(art.Bytes()))
	}))

	// cairn's hosts: one with a pool of spare network namespaces (as
	// cairn agent runs), one without (each start makes its namespace and
	// runs CNI ADD while runc starts).
	var phases *slog.Logger
	if os.Getenv("BENCH_PHASES") != "" { // each start's phases on stderr
		phases = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	pool := 2
	if n, err := strconv.Atoi(os.Getenv("BENCH_NETPOOL")); err == nil {
		pool = n
	}
	newHost := func(name, bridge, subnet string, pool int) (*cruntime.Runtime, *netns.Manager, error) {
		data := filepath.Join(work, name)
		c, err := cache.Open(filepath.Join(data, "cache"), &cache.HTTP{Base: "http://" + ln.Addr().String()}, cache.Options{Metrics: metrics.New()})
		if err != nil {
			return nil, nil, err
		}
		nets, err := netns.New(netns.Config{Bridge: bridge, Subnet: subnet, Dir: filepath.Join(data, "net"), Pool: pool})
		if err != nil {
			return nil, nil, err
		}
		nets.Prefill(false) // as cairn agent does when it starts
		if err := nets.Settle(); err != nil {
			return nil, nil, err
		}
		drv, err := runc.New(filepath.Join(data, "runc"))
		if err != nil {
			return nil, nil, err
		}
		rt, err := cruntime.New(ctx, cruntime.Config{Dir: data, Cache: c, Net: nets, Driver: drv, Log: phases})
		return rt, nets, err
	}
	rt, nets, err := newHost("data", "cairnb0", "10.250.0.0/24", pool)
	defer exec.Command("ip", "link", "del", "cairnb0").Run()
	if err != nil {
		return err
	}
	defer rt.Close()
	rt0, _, err := newHost("data0", "cairnb1", "10.250.1.0/24", 0)
	defer exec.Command("ip", "link", "del", "cairnb1").Run()
	if err != nil {
		return err
	}
	defer rt0.Close()
	desired := func(i int) hostapi.Desired {
		return hostapi.Desired{ID: fmt.Sprintf("bench-%d", i), Release: res.SHA256, TreeDigest: res.TOC.TreeSHA256,
			Cmd: []string{"/probe"}, Port: 8080, Limits: hostapi.Limits{CPU: 1, MemoryBytes: 256 << 20, Pids: 128}}
	}
	// One start, timed to the first answer; the stop and its teardown
	// (and the pool's refill) are not timed.
	start := func(rt *cruntime.Runtime, i int) (time.Duration, error) {
		t0 := time.Now()
		o, err := rt.Start(ctx, desired(i))
		if err != nil {
			return 0, err
		}
		if err := firstAnswer("http://" + o.Addr + "/"); err != nil {
			return 0, err
		}
		d := time.Since(t0)
		if err := rt.Stop(ctx, o.ID, 0); err != nil {
			return 0, err
		}
		rt.Settle()
		return d, nil
	}
	cairnStart := func(i int) (time.Duration, error) { return start(rt, i) }
	cold, err := cairnStart(0)
	if err != nil {
		return err
	}
	if _, err := start(rt0, 0); err != nil { // its cache warm too
		return err
	}

	// The plain bundle: a copy of the tree, `runc spec`'s config with the
	// probe as its process and a network namespace made beforehand.
	bundle := filepath.Join(work, "bundle")
	os.MkdirAll(bundle, 0o755)
	if err := run("", "cp", "-a", tree, filepath.Join(bundle, "rootfs")); err != nil {
		return err
	}
	if err := run(bundle, "runc", "spec"); err != nil {
		return err
	}
	ip, err := nets.Add(ctx, "plain", false)
	if err != nil {
		return err
	}
	defer nets.Del(ctx, "plain", false)
	defer exec.Command("runc", "--root", filepath.Join(work, "plain-runc"), "delete", "-f", "plain").Run()
	if err := plainConfig(filepath.Join(bundle, "config.json"), nets.Path("plain")); err != nil {
		return err
	}
	// The same, with cairn's config.json (Docker's seccomp profile and
	// capabilities, cgroup limits): what the isolation itself costs.
	same := filepath.Join(work, "same")
	os.MkdirAll(same, 0o755)
	if err := os.Rename(filepath.Join(bundle, "config.json"), filepath.Join(same, "plain.json")); err != nil {
		return err
	}
	os.WriteFile(filepath.Join(bundle, "config.json"), must(os.ReadFile(filepath.Join(same, "plain.json"))), 0o644)
	cfg, err := runc.Config(cruntime.Spec{ID: "plain", Root: filepath.Join(bundle, "rootfs"), NetNS: nets.Path("plain"),
		Args: []string{"/probe"}, Env: []string{"PORT=8080"}, Limits: desired(0).Limits})
	if err != nil {
		return err
	}
	sameJSON, _ := json.Marshal(cfg)
	plainState := filepath.Join(work, "plain-runc")
	plainStart := func(config []byte) (time.Duration, error) {
		if err := os.WriteFile(filepath.Join(bundle, "config.json"), config, 0o644); err != nil {
			return 0, err
		}
		t0 := time.Now()
		// The detached instance keeps runc's stdio: a file, not a pipe
		// that would be waited on.
		log, err := os.OpenFile(filepath.Join(work, "plain.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return 0, err
		}
		cmd := exec.Command("runc", "--root", plainState, "run", "-d", "--bundle", bundle, "plain")
		cmd.Stdout, cmd.Stderr = log, log
		err = cmd.Run()
		log.Close()
		if err != nil {
			return 0, fmt.Errorf("runc run -d: %v (see %s)", err, log.Name())
		}
		if err := firstAnswer("http://" + net.JoinHostPort(ip.String(), "8080") + "/"); err != nil {
			return 0, err
		}
		d := time.Since(t0)
		return d, exec.Command("runc", "--root", plainState, "delete", "-f", "plain").Run()
	}

	plainJSON := must(os.ReadFile(filepath.Join(same, "plain.json")))
	var cs, ps, ss, ns []time.Duration
	for i := 1; i <= starts; i++ {
		p, err := plainStart(plainJSON)
		if err != nil {
			return err
		}
		sm, err := plainStart(sameJSON)
		if err != nil {
			return err
		}
		ss = append(ss, sm)
		c, err := cairnStart(i)
		if err != nil {
			return err
		}
		n, err := start(rt0, i)
		if err != nil {
			return err
		}
		ps, cs, ns = append(ps, p), append(cs, c), append(ns, n)
	}
	cp50, cp99 := pct(cs, 50), pct(cs, 99)
	pp50, pp99 := pct(ps, 50), pct(ps, 99)
	fmt.Printf("instance start to first HTTP answer, %d starts each, warm cache (static Go server, %s release)\n", starts, mb(float64(res.Size)))
	fmt.Printf("  %-34s p50 %7s  p99 %7s\n", "cairn (cache+overlay+CNI+runc)", ms(cp50), ms(cp99))
	fmt.Printf("  %-34s p50 %7s  p99 %7s\n", "cairn, no netns pool (CNI ADD)", ms(pct(ns, 50)), ms(pct(ns, 99)))
	fmt.Printf("  %-34s p50 %7s  p99 %7s\n", "plain runc run -d (netns premade)", ms(pp50), ms(pp99))
	fmt.Printf("  %-34s p50 %7s  p99 %7s\n", "plain runc run -d, cairn's config", ms(pct(ss, 50)), ms(pct(ss, 99)))
	fmt.Printf("  ratio cairn/plain: p50 %.2fx  p99 %.2fx  (target <= 1.3x)\n", float64(cp50)/float64(pp50), float64(cp99)/float64(pp99))
	fmt.Printf("  ratio cairn/plain with cairn's config: p50 %.2fx  p99 %.2fx\n", float64(cp50)/float64(pct(ss, 50)), float64(cp99)/float64(pct(ss, 99)))
	fmt.Printf("  ratio cairn's config/plain (what the isolation costs runc): p50 %.2fx  p99 %.2fx\n", float64(pct(ss, 50))/float64(pp50), float64(pct(ss, 99))/float64(pp99))
	fmt.Printf("  ratio cairn without/with the netns pool: p50 %.2fx  p99 %.2fx\n", float64(pct(ns, 50))/float64(cp50), float64(pct(ns, 99))/float64(cp99))
	fmt.Printf("  cold cache (fetch, sha256, unpack, tree digest, then start): %s\n", ms(cold))
	return nil
}

// plainConfig sets the probe as the process of `runc spec`'s config, in
// the network namespace at netnsPath, its root writable.
func plainConfig(path, netnsPath string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var s map[string]any
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	p := s["process"].(map[string]any)
	p["terminal"] = false
	p["args"] = []string{"/probe"}
	p["env"] = []string{"PORT=8080"}
	s["root"].(map[string]any)["readonly"] = false
	lin := s["linux"].(map[string]any)
	for _, ns := range lin["namespaces"].([]any) {
		if m := ns.(map[string]any); m["type"] == "network" {
			m["path"] = netnsPath
		}
	}
	b, err = json.Marshal(s)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// firstAnswer polls url until it answers 200, for 10 s.
func firstAnswer(url string) error { return firstAnswerWithin(url, 10*time.Second) }

// firstAnswerWithin polls url until it answers 200, for within.
func firstAnswerWithin(url string, within time.Duration) error {
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(500 * time.Microsecond)
	}
	return fmt.Errorf("%s did not answer", url)
}

func pct(ds []time.Duration, p int) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	return s[max(0, min(len(s)-1, i-1))]
}

func ms(d time.Duration) string {
	return strings.TrimSuffix(fmt.Sprintf("%.1f ms", float64(d)/1e6), "")
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
