package e2e

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc is a real `cairn server` process on a data dir that a test can kill
// (SIGKILL, as a crash or the OOM killer would) and start again on the same
// data dir. Its embedded env talks to the current process.
type proc struct {
	*env
	data string
	args []string // flags after --data, --api-addr and --edge-addr
	cmd  *exec.Cmd
	exit chan struct{} // closed when cmd exits
	log  *lockedBuffer // the process's stderr, all runs
}

// lockedBuffer is a bytes.Buffer safe for a process to write to while the
// test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startProc starts `cairn server` on data with args; the test's end stops
// it.
func startProc(t *testing.T, data string, args ...string) *proc {
	t.Helper()
	p := &proc{data: data, args: args, log: &lockedBuffer{}}
	p.start(t)
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("server log:\n%s", tail(p.log.String(), 4000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// start runs the server (again) and waits until both listeners answer.
func (p *proc) start(t *testing.T) {
	t.Helper()
	api, edge := freeAddr(t), freeAddr(t)
	c := exec.Command(cairnBinary(t), append([]string{"server", "--data", p.data,
		"--api-addr", api, "--edge-addr", edge}, p.args...)...)
	c.Env = append(os.Environ(), "CAIRN_LOG_LEVEL=info", "CAIRN_LOG_FORMAT=text")
	c.Stdout, c.Stderr = p.log, p.log
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	p.cmd, p.exit = c, make(chan struct{})
	go func(exit chan struct{}) { c.Wait(); close(exit) }(p.exit)
	for _, addr := range []string{api, edge} {
		for deadline := time.Now().Add(20 * time.Second); ; {
			if conn, err := net.Dial("tcp", addr); err == nil {
				conn.Close()
				break
			}
			select {
			case <-p.exit:
				t.Fatalf("server exited at start:\n%s", tail(p.log.String(), 4000))
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("server does not listen on %s after 20 s", addr)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	tok, err := os.ReadFile(filepath.Join(p.data, "token"))
	if err != nil {
		t.Fatal(err)
	}
	p.env = &env{t: t, data: p.data, api: "http://" + api, edge: "http://" + edge, token: strings.TrimSpace(string(tok))}
}

// kill ends the process with SIGKILL and waits for it.
func (p *proc) kill() {
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exit
	p.cmd = nil
}

// stop ends the process with SIGINT (a clean shutdown) and waits for it.
func (p *proc) stop() {
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.exit:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.exit
	}
	p.cmd = nil
}

// alive reports whether the process still runs.
func (p *proc) alive() bool {
	select {
	case <-p.exit:
		return false
	default:
		return p.cmd != nil
	}
}
