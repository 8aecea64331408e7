// Package runc is the container driver: it runs each instance with the
// distribution's runc binary (exec, no libcontainer), from a bundle whose
// config.json is built with the runtime-spec types (Config). An instance
// runs as `runc run` in the foreground under a small sh parent in a
// session of its own, so it outlives the agent that started it and its
// exit code is written to a file when it ends; a new Driver over the same
// state directory finds it.
package runc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cairnhq/cairn/internal/hostapi"
	cruntime "github.com/cairnhq/cairn/internal/runtime"
)

// Driver runs instances with runc.
type Driver struct {
	Binary string // "runc" on $PATH when empty
	State  string // runc's --root; one per data directory
}

var _ cruntime.Driver = (*Driver)(nil)

// New returns a runc driver whose runc state lives in stateDir.
func New(stateDir string) (*Driver, error) {
	bin, err := exec.LookPath("runc")
	if err != nil {
		return nil, fmt.Errorf("runc driver: %w (apt-get install runc)", err)
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, err
	}
	return &Driver{Binary: bin, State: stateDir}, nil
}

func (d *Driver) Name() string      { return "runc" }
func (d *Driver) Isolation() string { return hostapi.IsolationContainer }

func (d *Driver) runc(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, d.Binary, append([]string{"--root", d.State}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("runc %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

func bundle(dir string) string { return filepath.Join(dir, "bundle") }

// Start writes the bundle and runs it.
func (d *Driver) Start(ctx context.Context, spec cruntime.Spec) error {
	if _, err := os.Lstat(d.link(spec.ID)); err == nil { // it ran before
		if err := d.Delete(ctx, spec.ID, false); err != nil {
			return err
		}
	}
	cfg, err := Config(spec)
	if err != nil {
		return err
	}
	b := bundle(spec.Dir)
	if err := os.MkdirAll(b, 0o700); err != nil {
		return err
	}
	js, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(b, "config.json"), js, 0o600); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(d.State, "dirs"), 0o700); err != nil {
		return err
	}
	if err := os.Symlink(spec.Dir, d.link(spec.ID)); err != nil {
		return err
	}
	pidFile := filepath.Join(b, "pid")
	exitFile := filepath.Join(b, "exit")
	os.Remove(pidFile)
	os.Remove(exitFile)
	w := watchBundle(b) // before runc can write the pid file
	defer w.Close()
	log, err := os.OpenFile(spec.Log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer log.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer devnull.Close()
	// The sh parent waits for runc run (which waits for the instance) and
	// keeps its exit status; runc gives 128+n for a signal n.
	script := `"$@"; echo $? > "$EXIT.tmp" && mv "$EXIT.tmp" "$EXIT"`
	cmd := exec.Command("/bin/sh", "-c", script, "sh",
		d.Binary, "--root", d.State, "run", "--bundle", b, "--pid-file", pidFile, spec.ID)
	cmd.Env = []string{"EXIT=" + exitFile, "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	shim := cmd.Process.Pid
	if err := os.WriteFile(filepath.Join(b, "shim"), []byte(strconv.Itoa(shim)), 0o600); err != nil {
		return err
	}
	go cmd.Wait() // reaped here while this process lives; re-parented otherwise
	for {
		if _, err := os.Stat(pidFile); err == nil {
			return nil
		}
		if _, err := os.Stat(exitFile); err == nil || syscall.Kill(shim, 0) != nil {
			code, _ := os.ReadFile(exitFile)
			return fmt.Errorf("runc run %s exited (%s) before the instance ran: %s", spec.ID, strings.TrimSpace(string(code)), tail(spec.Log, 400))
		}
		if err := ctx.Err(); err != nil {
			d.Delete(context.WithoutCancel(ctx), spec.ID, true)
			return err
		}
		w.wait(20 * time.Millisecond)
	}
}

// bundleWatch wakes Start when a file appears in the bundle (runc's pid
// file, the sh parent's exit file), instead of waking it every
// millisecond while runc, CPU-bound, starts the instance. Without
// inotify it sleeps a millisecond.
type bundleWatch struct{ fd int }

func watchBundle(dir string) *bundleWatch {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return &bundleWatch{fd: -1}
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_CREATE|unix.IN_MOVED_TO); err != nil {
		unix.Close(fd)
		return &bundleWatch{fd: -1}
	}
	return &bundleWatch{fd: fd}
}

// wait returns after an event or max (the caller checks the files and
// the sh parent again either way).
func (w *bundleWatch) wait(max time.Duration) {
	if w.fd < 0 {
		time.Sleep(time.Millisecond)
		return
	}
	fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}
	if n, _ := unix.Poll(fds, int(max/time.Millisecond)); n > 0 {
		var buf [4096]byte
		unix.Read(w.fd, buf[:]) // drain
	}
}

func (w *bundleWatch) Close() {
	if w.fd >= 0 {
		unix.Close(w.fd)
	}
}

func (d *Driver) Signal(ctx context.Context, id string, sig syscall.Signal) error {
	_, err := d.runc(ctx, "kill", "--all", id, strconv.Itoa(int(sig)))
	if err != nil && strings.Contains(err.Error(), "not exist") {
		return cruntime.ErrNotFound
	}
	return err
}

type state struct {
	Status string `json:"status"`
	Pid    int    `json:"pid"`
	Bundle string `json:"bundle"`
}

// Status asks runc; once runc run has ended (it deletes the container)
// the exit file the sh parent wrote gives the exit code.
func (d *Driver) Status(ctx context.Context, id string) (cruntime.Status, error) {
	out, err := d.runc(ctx, "state", id)
	if err == nil {
		var st state
		if err := json.Unmarshal(out, &st); err != nil {
			return cruntime.Status{}, fmt.Errorf("runc state %s: %w", id, err)
		}
		if st.Status == "running" || st.Status == "created" || st.Status == "paused" {
			return cruntime.Status{Running: true, Pid: st.Pid}, nil
		}
		// Stopped, and runc run is about to delete it and exit.
		dir, err := os.Readlink(d.link(id))
		if err != nil {
			return cruntime.Status{}, nil
		}
		if code := exitCode(dir); code != nil || !shimAlive(dir, id) {
			return cruntime.Status{ExitCode: code}, nil
		}
		return cruntime.Status{Running: true}, nil
	}
	if !strings.Contains(err.Error(), "not exist") {
		return cruntime.Status{}, err
	}
	dir, err := os.Readlink(d.link(id))
	if err != nil {
		return cruntime.Status{}, cruntime.ErrNotFound
	}
	code := exitCode(dir)
	if code == nil && shimAlive(dir, id) {
		// runc run has ended or is ending; its sh parent has yet to
		// write the exit code: still running, for a moment.
		return cruntime.Status{Running: true}, nil
	}
	return cruntime.Status{ExitCode: code}, nil
}

// shimAlive reports whether the sh parent of id's runc run still runs
// (its command line names the bundle, so a reused pid does not count).
func shimAlive(dir, id string) bool {
	b, err := os.ReadFile(filepath.Join(bundle(dir), "shim"))
	if err != nil {
		return false
	}
	cmdline, err := os.ReadFile("/proc/" + strings.TrimSpace(string(b)) + "/cmdline")
	return err == nil && bytes.Contains(cmdline, []byte(bundle(dir))) && bytes.HasSuffix(cmdline, []byte(id+"\x00"))
}

// link names the instance directory of id, for Status once runc forgot it.
func (d *Driver) link(id string) string { return filepath.Join(d.State, "dirs", id) }

// exitCode reads the exit code the sh parent kept in dir's bundle.
func exitCode(dir string) *int {
	b, err := os.ReadFile(filepath.Join(bundle(dir), "exit"))
	if err != nil {
		return nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return nil
	}
	return &n
}

func (d *Driver) Delete(ctx context.Context, id string, force bool) error {
	args := []string{"delete", id}
	if force {
		args = []string{"delete", "--force", id}
	}
	_, err := d.runc(ctx, args...)
	if err != nil && !strings.Contains(err.Error(), "not exist") {
		return err
	}
	if err := os.Remove(d.link(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// tail is the end of a log file, for errors.
func tail(p string, n int64) string {
	b, _ := os.ReadFile(p)
	if int64(len(b)) > n {
		b = b[int64(len(b))-n:]
	}
	return strings.TrimSpace(string(b))
}
