// Package testproc is a TEST-ONLY hostapi.Runtime: it runs each instance's
// Cmd as a plain process of the host, with $PORT set to a free port of
// 127.0.0.1. It gives no isolation at all, fetches no release and makes no
// root: it exists so that the agent loop (internal/agent) and the API can
// be tested end to end before and apart from the real host side
// (internal/runtime, the runc driver). `cairn agent --driver testproc`
// refuses to run unless CAIRN_AGENT_TEST_DRIVER=1.
//
// Instances survive the agent: each runs under `sh -c` in a session of its
// own (setsid), the shell writes the exit code to a file when the command
// ends, and a state file per instance lets a new Runtime over the same
// directory find them again (adoption).
package testproc

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cairnhq/cairn/internal/hostapi"
)

// Name is the driver name of this runtime.
const Name = "testproc"

// Runtime runs instances as host processes under Dir.
type Runtime struct {
	Dir string
	mu  sync.Mutex
}

// New returns a Runtime keeping its state under dir.
func New(dir string) (*Runtime, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &Runtime{Dir: dir}, nil
}

type state struct {
	Desired   hostapi.Desired `json:"desired"`
	PID       int             `json:"pid"`
	Port      int             `json:"port"`
	StartedAt time.Time       `json:"started_at"`
}

func (r *Runtime) dir(id string) string { return filepath.Join(r.Dir, id) }

// Driver names the runtime.
func (r *Runtime) Driver() string { return Name }

// Isolation: none really; it claims container to fit the records.
func (r *Runtime) Isolation() string { return hostapi.IsolationContainer }

// Start runs d.Cmd with $PORT.
func (r *Runtime) Start(ctx context.Context, d hostapi.Desired) (hostapi.Observed, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(d.Cmd) == 0 {
		return hostapi.Observed{}, errors.New("testproc: no cmd")
	}
	dir := r.dir(d.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return hostapi.Observed{}, err
	}
	if st, err := r.load(d.ID); err == nil && alive(st.PID) {
		return r.observe(st), nil
	}
	port, err := freePort()
	if err != nil {
		return hostapi.Observed{}, err
	}
	os.Remove(filepath.Join(dir, "exit"))
	logf, err := os.OpenFile(filepath.Join(dir, "log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return hostapi.Observed{}, err
	}
	defer logf.Close()
	args := append([]string{"-c", `"$@"; echo $? > "$CAIRN_EXIT_FILE"`, "sh"}, d.Cmd...)
	cmd := exec.Command("/bin/sh", args...)
	cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port), "CAIRN_EXIT_FILE="+filepath.Join(dir, "exit"))
	for k, v := range d.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return hostapi.Observed{}, err
	}
	go cmd.Wait() // reap it while this process lives
	st := state{Desired: d, PID: cmd.Process.Pid, Port: port, StartedAt: time.Now().UTC()}
	b, _ := json.Marshal(st)
	if err := os.WriteFile(filepath.Join(dir, "state.json"), b, 0o600); err != nil {
		return hostapi.Observed{}, err
	}
	return r.observe(&st), nil
}

func (r *Runtime) load(id string) (*state, error) {
	b, err := os.ReadFile(filepath.Join(r.dir(id), "state.json"))
	if err != nil {
		return nil, err
	}
	var st state
	return &st, json.Unmarshal(b, &st)
}

func (r *Runtime) observe(st *state) hostapi.Observed {
	o := hostapi.Observed{ID: st.Desired.ID, State: hostapi.StateStarting, Addr: "127.0.0.1:" + strconv.Itoa(st.Port),
		TreeDigest: st.Desired.TreeDigest, StartedAt: st.StartedAt}
	if b, err := os.ReadFile(filepath.Join(r.dir(st.Desired.ID), "exit")); err == nil {
		code, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		o.State, o.ExitCode = hostapi.StateStopped, &code
	} else if !alive(st.PID) {
		code := -1
		o.State, o.ExitCode = hostapi.StateStopped, &code
	}
	return o
}

// alive: the process group leader pid still runs (not a zombie).
func alive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// Stop signals the instance's process group, then removes its state.
func (r *Runtime) Stop(ctx context.Context, id string, grace time.Duration) error {
	r.mu.Lock()
	st, err := r.load(id)
	r.mu.Unlock()
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	syscall.Kill(-st.PID, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for alive(st.PID) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	syscall.Kill(-st.PID, syscall.SIGKILL)
	r.mu.Lock()
	defer r.mu.Unlock()
	return os.RemoveAll(r.dir(id))
}

// List returns every instance with a state file.
func (r *Runtime) List(ctx context.Context) ([]hostapi.Observed, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ents, err := os.ReadDir(r.Dir)
	if err != nil {
		return nil, err
	}
	out := []hostapi.Observed{}
	for _, e := range ents {
		st, err := r.load(e.Name())
		if err != nil {
			continue
		}
		out = append(out, r.observe(st))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Logs copies the instance's log; with follow, what comes after, until
// ctx ends or the instance stops.
func (r *Runtime) Logs(ctx context.Context, id string, follow bool, w io.Writer) error {
	f, err := os.Open(filepath.Join(r.dir(id), "log"))
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	for {
		if _, err := io.Copy(w, br); err != nil {
			return err
		}
		if fl, ok := w.(interface{ Flush() }); ok {
			fl.Flush()
		}
		if !follow {
			return nil
		}
		r.mu.Lock()
		st, err := r.load(id)
		r.mu.Unlock()
		if err != nil || r.observe(st).State == hostapi.StateStopped {
			_, err := io.Copy(w, br)
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
