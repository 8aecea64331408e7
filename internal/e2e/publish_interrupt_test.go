package e2e

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// slowProxy forwards TCP connections to upstream. Once a connection has
// sent more than after bytes towards upstream it is throttled to about
// 160 kB/s (a slow uplink), and mid is closed: an upload is under way and
// cannot end for many seconds. It stops when the test ends.
type slowProxy struct {
	addr string
	mid  chan struct{}
	once sync.Once

	mu    sync.Mutex
	conns []net.Conn
}

// cut closes every connection, both sides. Once the client is gone this
// drops what the kernel still buffers for the throttled copy: the server
// sees the connection end as it would without a proxy.
func (p *slowProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

func startSlowProxy(t *testing.T, upstream string, after int64) *slowProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &slowProxy{addr: ln.Addr().String(), mid: make(chan struct{})}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		p.cut()
		wg.Wait()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(c, up); c.Close() }()
			go func() { defer wg.Done(); p.send(up, c, after); up.Close() }()
		}
	}()
	return p
}

// send copies from to to, throttled past after bytes.
func (p *slowProxy) send(to, from net.Conn, after int64) {
	buf := make([]byte, 16<<10)
	var n int64
	for {
		k, err := from.Read(buf)
		if k > 0 {
			if _, werr := to.Write(buf[:k]); werr != nil {
				return
			}
			if n += int64(k); n > after {
				p.once.Do(func() { close(p.mid) })
				time.Sleep(100 * time.Millisecond)
			}
		}
		if err != nil {
			return
		}
	}
}

// interruptPublish runs `cairn publish dir --deployment dep` through a
// throttling proxy in front of s's API, sends SIGINT to the CLI once 256 KiB
// of the upload went through and the server has the publish under way (in
// its staging directory), and returns its exit code and stderr.
func (s *readmeServer) interruptPublish(dir, dep string) (int, string) {
	t := s.t
	t.Helper()
	p := startSlowProxy(t, s.api, 256<<10)
	c := exec.Command(s.bin, "publish", dir, "--deployment", dep, "--api", "http://"+p.addr, "--token", s.token)
	c.Dir = s.dir
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- c.Wait() }()
	select {
	case <-p.mid:
	case err := <-exited:
		t.Fatalf("cairn publish ended before the upload was under way: %v\n%s%s", err, out.String(), errb.String())
	case <-time.After(30 * time.Second):
		c.Process.Kill()
		<-exited
		t.Fatalf("the upload did not start in 30 s\n%s%s", out.String(), errb.String())
	}
	// The server is reading the upload: its staging directory holds it.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ents, _ := os.ReadDir(filepath.Join(s.dir, "cairn-data", "staging")); len(ents) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the server has no publish under way (its staging directory is empty) 10 s into the upload")
		}
	}
	if err := c.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	var err error
	select {
	case err = <-exited:
	case <-time.After(15 * time.Second):
		c.Process.Kill()
		<-exited
		t.Fatalf("cairn publish still ran 15 s after SIGINT\n%s%s", out.String(), errb.String())
	}
	p.cut()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("cairn publish after SIGINT: %v (exit 0?)\nstdout %s\nstderr %s", err, out.String(), errb.String())
	}
	return ee.ExitCode(), errb.String()
}

// stagingEmpty waits up to 5 s for the server's staging directory (and the
// file blob store's temporary files, on the embedded default) to be empty.
func (s *readmeServer) stagingEmpty() {
	s.t.Helper()
	var left []string
	for deadline := time.Now().Add(5 * time.Second); ; {
		left = left[:0]
		for _, d := range []string{"staging", filepath.Join("blobs", "tmp")} {
			ents, _ := os.ReadDir(filepath.Join(s.dir, "cairn-data", d))
			for _, e := range ents {
				left = append(left, filepath.Join(d, e.Name()))
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("an interrupted publish left %v in the data directory", left)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCtrlCPublishChangesNothing: SIGINT to the real `cairn publish` in the
// middle of its upload (4 MiB through a throttled connection) exits 130,
// "interrupted", and changes nothing: a publish that would have created
// the deployment leaves none, one to an existing deployment (the
// incremental protocol) leaves no version and the active one serving, and
// neither leaves anything in the server's staging directory.
func TestCtrlCPublishChangesNothing(t *testing.T) {
	s := startReadme(t)
	big := make([]byte, 4<<20) // random: zstd cannot shrink it
	rand.Read(big)
	site := filepath.Join(t.TempDir(), "site")
	writeFiles(t, site, map[string]string{"index.html": "<h1>big</h1>", "big.bin": string(big)})

	wantInterrupted := func(code int, stderr string) {
		t.Helper()
		if code != 130 || !strings.Contains(stderr, "interrupted") {
			t.Fatalf("cairn publish after SIGINT: exit %d, stderr %q; want 130 and interrupted", code, stderr)
		}
	}
	// A new deployment: the tar upload with create=true.
	wantInterrupted(s.interruptPublish(site, "fresh"))
	if got := s.deployments(); len(got) != 0 {
		t.Fatalf("an interrupted publish left deployments %v", got)
	}
	s.stagingEmpty()

	// An existing deployment: the incremental publish; its session is
	// abandoned.
	small := filepath.Join(t.TempDir(), "small")
	writeFiles(t, small, map[string]string{"index.html": "<h1>one</h1>"})
	s.ok("publish", small, "--deployment", "live")
	wantInterrupted(s.interruptPublish(site, "live"))
	if n := s.versionCount("live"); n != 1 {
		t.Fatalf("live has %d versions after an interrupted publish, want 1", n)
	}
	if code, body := s.fetch("live.localhost", "/"); code != 200 || body != "<h1>one</h1>" {
		t.Fatalf("live serves %d %q after an interrupted publish, want v1", code, body)
	}
	s.stagingEmpty()
	if got := strings.Join(s.deployments(), ","); got != "live" {
		t.Fatalf("deployments %s, want live", got)
	}
}
