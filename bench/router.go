package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"

	"github.com/cairnhq/cairn/internal/hostapi"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/meta/sqlite"
)

// The router benchmark: two instances (small Go HTTP servers, processes
// of their own) of one rootfs deployment, served by `cairn server --roles
// edge` over a SQLite data dir whose records this program writes, and by
// nginx as a reverse proxy in front of the same instances; wrk against
// each, alternating, in one run.
const (
	routerEdgeAddr  = "127.0.0.1:17890"
	routerNginxAddr = "127.0.0.1:17891"
	instanceA       = "127.0.0.1:17892"
	instanceB       = "127.0.0.1:17893"
	instanceBody    = "hello from a cairn instance\n"
)

// routerInstance is the instance process (go run ./bench router-instance ADDR).
func routerInstance(addr string) error {
	body := []byte(instanceBody)
	return http.ListenAndServe(addr, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = []string{"text/plain"}
		w.Write(body)
	}))
}

func routerBench(serveOnly bool) error {
	if err := ensure(map[string]string{"nginx": "nginx", "wrk": "wrk"}); err != nil {
		return err
	}
	work, err := workDir()
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	bin, err := buildCairn(work)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var instances []int
	for _, addr := range []string{instanceA, instanceB} {
		cmd := exec.Command(self, "router-instance", addr)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			return err
		}
		instances = append(instances, cmd.Process.Pid)
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		if err := waitPort(addr); err != nil {
			return err
		}
	}
	data := filepath.Join(work, "data")
	if err := routerRecords(data); err != nil {
		return err
	}
	srv := exec.Command(bin, "server", "--roles", "edge", "--data", data, "--edge-addr", routerEdgeAddr, "--access-log=false")
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		return err
	}
	defer func() { srv.Process.Signal(os.Interrupt); srv.Wait() }()
	if err := waitPort(routerEdgeAddr); err != nil {
		return err
	}
	stopNginx, nginxPid, err := startNginxProxy(work)
	if err != nil {
		return err
	}
	defer stopNginx()
	for _, u := range []struct{ url, host string }{{"http://" + instanceA + "/", ""}, {"http://" + routerEdgeAddr + "/", "one.localhost"},
		{"http://" + routerEdgeAddr + "/", "two.localhost"}, {"http://" + routerNginxAddr + "/", ""}} {
		b, err := hostGet(u.url, u.host)
		if err != nil || string(b) != instanceBody {
			return fmt.Errorf("GET %s (Host %s) = %q, %v", u.url, u.host, b, err)
		}
	}

	if serveOnly {
		fmt.Printf("edge %s (pid %d, Host one.localhost or two.localhost), nginx %s (pid %d), instances %s %s; interrupt to stop\n",
			routerEdgeAddr, srv.Process.Pid, routerNginxAddr, nginxPid, instanceA, instanceB)
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
		return nil
	}
	const rounds = 3
	fmt.Printf("\n== router: %d-byte response, wrk keep-alive, median of %d alternating rounds\n", len(instanceBody), rounds)
	var dl, rl, dr, r1, r2, nr []float64
	// CPU µs per request of the proxy, of the instances and of wrk, in the
	// runs over two instances: the router's, nginx's, and straight to A.
	var cpuR, cpuN, cpuRI, cpuNI, cpuRW, cpuNW, cpuDI, cpuDW []float64
	for i := 0; i < rounds; i++ {
		// Latency: one connection, one request at a time.
		d, err := wrkLatency("http://"+instanceA+"/", "")
		if err != nil {
			return err
		}
		r, err := wrkLatency("http://"+routerEdgeAddr+"/", "one.localhost")
		if err != nil {
			return err
		}
		dl, rl = append(dl, d), append(rl, r)
		// Throughput: 32 connections; and the CPU time the proxy spent
		// (user + system, all its processes) per request.
		for _, x := range []struct {
			url, host          string
			out, cpu, ins, wrk *[]float64
			pid                int
		}{{"http://" + instanceA + "/", "", &dr, nil, &cpuDI, &cpuDW, 0}, {"http://" + routerEdgeAddr + "/", "one.localhost", &r1, nil, nil, nil, 0},
			{"http://" + routerEdgeAddr + "/", "two.localhost", &r2, &cpuR, &cpuRI, &cpuRW, srv.Process.Pid},
			{"http://" + routerNginxAddr + "/", "", &nr, &cpuN, &cpuNI, &cpuNW, nginxPid}} {
			p0, i0, w0 := cpuSeconds(family(x.pid)), cpuSeconds(instances), childCPU()
			w, n, err := wrk5(x.url, x.host)
			if err != nil {
				return err
			}
			*x.out = append(*x.out, w)
			if x.cpu != nil {
				*x.cpu = append(*x.cpu, (cpuSeconds(family(x.pid))-p0)/n*1e6)
			}
			if x.ins != nil {
				*x.ins = append(*x.ins, (cpuSeconds(instances)-i0)/n*1e6)
				*x.wrk = append(*x.wrk, (childCPU()-w0)/n*1e6)
			}
		}
		fmt.Printf("   round %d: p50 direct %.3f ms, router %.3f ms; req/s direct %.0f, router(1) %.0f, router(2) %.0f, nginx(2) %.0f; CPU/req router %.1f µs, nginx %.1f µs\n",
			i+1, dl[i], rl[i], dr[i], r1[i], r2[i], nr[i], cpuR[i], cpuN[i])
	}
	fmt.Printf("   added p50 latency (router - direct, c1):   %.3f ms   (target <= 0.3 ms)\n", median(rl)-median(dl))
	fmt.Printf("   throughput router/direct, one instance:    %.2fx     (target >= 0.8x)\n", median(r1)/median(dr))
	fmt.Printf("   throughput router/nginx, two instances:    %.2fx     (target >= 0.9x)\n", median(r2)/median(nr))
	fmt.Printf("   CPU µs per request (proxy + instances + wrk): direct 0 + %.1f + %.1f, router %.1f + %.1f + %.1f, nginx %.1f + %.1f + %.1f\n",
		median(cpuDI), median(cpuDW), median(cpuR), median(cpuRI), median(cpuRW), median(cpuN), median(cpuNI), median(cpuNW))
	return nil
}

// routerRecords writes a host, deployment "one" with instance A and
// deployment "two" with instances A and B, all healthy, into data's
// SQLite file (only the records: an edge never reads a dynamic release).
func routerRecords(data string) error {
	if err := os.MkdirAll(data, 0o755); err != nil {
		return err
	}
	ctx := context.Background()
	s, err := sqlite.Open(filepath.Join(data, "cairn.db"))
	if err != nil {
		return err
	}
	defer s.Close()
	h := &meta.Host{Host: hostapi.Host{ID: "host_bench", Hostname: "bench", Driver: "bench",
		Capacity: hostapi.Capacity{CPU: 8, MemoryBytes: 8 << 30, Instances: 8}}}
	if err := s.RegisterHost(ctx, h, "bench"); err != nil {
		return err
	}
	for i, dep := range []struct {
		name  string
		addrs []string
	}{{"one", []string{instanceA}}, {"two", []string{instanceA, instanceB}}} {
		d := &meta.Deployment{Name: dep.name, Kind: meta.KindRootfs}
		if err := s.CreateDeployment(ctx, d, "bench"); err != nil {
			return err
		}
		sha := fmt.Sprintf("%064x", i+1)
		v, err := s.CreateVersion(ctx, meta.NewVersion{DeploymentID: d.ID, SourceSHA256: sha,
			Release:  meta.Release{SHA256: sha, Kind: meta.KindRootfs, SizeBytes: 1, URI: "file:///bench"},
			Manifest: meta.Manifest{Files: 1, Entrypoint: "/app"}, Activate: true, Actor: "bench",
			Runtime: &meta.Runtime{Cmd: []string{"/app"}, Port: 8080}})
		if err != nil {
			return err
		}
		var create []meta.NewInstance
		var obs []hostapi.Observed
		for j, addr := range dep.addrs {
			id := fmt.Sprintf("%s-%d", dep.name, j)
			create = append(create, meta.NewInstance{ID: id, DeploymentID: d.ID, VersionID: v.ID, HostID: h.ID})
			obs = append(obs, hostapi.Observed{ID: id, State: hostapi.StateHealthy, Addr: addr})
		}
		ps, err := s.PlacementState(ctx)
		if err != nil {
			return err
		}
		if err := s.ApplyPlacement(ctx, ps.Gen, create, nil, "bench"); err != nil {
			return err
		}
		if err := s.Heartbeat(ctx, h.ID, hostapi.Capacity{}, obs); err != nil {
			return err
		}
	}
	return nil
}

func startNginxProxy(work string) (stop func(), pid int, err error) {
	prefix := filepath.Join(work, "nginx-proxy")
	os.MkdirAll(filepath.Join(prefix, "logs"), 0o755)
	conf := fmt.Sprintf(`worker_processes 2;
user root;
pid %[1]s/nginx.pid;
error_log %[1]s/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  upstream instances { server %[3]s; server %[4]s; keepalive 128; keepalive_requests 1000000; }
  server {
    listen %[2]s;
    location / {
      proxy_pass http://instances;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;
      proxy_set_header X-Request-Id $request_id;
      proxy_next_upstream error timeout;
    }
  }
}
`, prefix, routerNginxAddr, instanceA, instanceB)
	cf := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		return nil, 0, err
	}
	bin := "nginx"
	if _, err := exec.LookPath(bin); err != nil {
		bin = "/usr/sbin/nginx"
	}
	cmd := exec.Command(bin, "-p", prefix, "-c", cf, "-g", "daemon off;")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, 0, err
	}
	if err := waitPort(routerNginxAddr); err != nil {
		cmd.Process.Kill()
		return nil, 0, err
	}
	return func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }, cmd.Process.Pid, nil
}

// wrk5 is requests/s and requests of 5 s of wrk -t2 -c32.
func wrk5(url, host string) (rps, n float64, err error) {
	args := []string{"-t2", "-c32", "-d5s", url}
	if host != "" {
		args = append(args, "-H", "Host: "+host)
	}
	out, err := output("", "wrk", args...)
	if err != nil {
		return 0, 0, err
	}
	if regexp.MustCompile(`Non-2xx|Socket errors`).MatchString(out) {
		return 0, 0, fmt.Errorf("wrk saw errors on %s (%s):\n%s", url, host, out)
	}
	m, c := rpsRE.FindStringSubmatch(out), requestsRE.FindStringSubmatch(out)
	if m == nil || c == nil {
		return 0, 0, fmt.Errorf("cannot parse wrk output:\n%s", out)
	}
	rps, _ = strconv.ParseFloat(m[1], 64)
	n, _ = strconv.ParseFloat(c[1], 64)
	return rps, n, nil
}

var requestsRE = regexp.MustCompile(`(\d+) requests in`)

// childCPU is the user and system CPU time of this process's children
// that have ended (each wrk, once waited for).
func childCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

var p50RE = regexp.MustCompile(`(?m)^\s+50%\s+([\d.]+)(us|ms|s)\s*$`)

// wrkLatency is the median latency in ms of 4 s of wrk -t1 -c1.
func wrkLatency(url, host string) (float64, error) {
	args := []string{"-t1", "-c1", "-d4s", "--latency", url}
	if host != "" {
		args = append(args, "-H", "Host: "+host)
	}
	out, err := output("", "wrk", args...)
	if err != nil {
		return 0, err
	}
	m := p50RE.FindStringSubmatch(out)
	if m == nil {
		return 0, errors.New("cannot parse wrk latency:\n" + out)
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v * map[string]float64{"us": 1e-3, "ms": 1, "s": 1e3}[m[2]], nil
}

// hostGet is the body of GET url with Host host ("": the URL's).
func hostGet(url, host string) ([]byte, error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return nil, err
	}
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	return io.ReadAll(resp.Body)
}
