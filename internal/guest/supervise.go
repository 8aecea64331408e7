package guest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// App is the process the init runs.
type App struct {
	Args  []string
	Env   []string
	Cwd   string // "" is /
	User  string // "uid[:gid]"
	Out   *os.File
	Grace time.Duration // SIGTERM to SIGKILL on stop
}

// Forwarded are the signals the supervisor passes on to the app's
// process group as they come. SIGTERM is not among them: it stops the app
// (SIGTERM, then SIGKILL after the grace).
var Forwarded = []os.Signal{syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH}

// Supervise runs app as a child in a process group of its own and returns
// its exit code (128+n for a signal n; 127 if it could not be started).
// The calling process must be PID 1 or a child subreaper
// (PR_SET_CHILD_SUBREAPER), and must have no other children: Supervise
// reaps every child that ends (orphans re-parented to it included). A
// signal in Forwarded that arrives on sigs goes to the app's group;
// SIGTERM (the init sends it on a power-button press) stops the app:
// SIGTERM to its group, then SIGKILL after app.Grace. When the app ends,
// what is left of its group is killed.
func Supervise(app App, sigs <-chan os.Signal, log io.Writer) int {
	chld := make(chan os.Signal, 16)
	signal.Notify(chld, syscall.SIGCHLD)
	defer signal.Stop(chld)
	pid, err := start(app)
	if err != nil {
		fmt.Fprintf(log, "cairn-guest: start %s: %v\n", app.Args[0], err)
		return 127
	}
	var kill <-chan time.Time
	tick := time.NewTicker(500 * time.Millisecond) // in case a SIGCHLD coalesced
	defer tick.Stop()
	for {
		if code, done := reap(pid); done {
			syscall.Kill(-pid, syscall.SIGKILL)
			for reapAny() {
			}
			return code
		}
		select {
		case <-chld:
		case <-tick.C:
		case s := <-sigs:
			sig := s.(syscall.Signal)
			if sig == syscall.SIGTERM {
				if kill == nil {
					kill = time.After(app.Grace)
				}
			}
			syscall.Kill(-pid, sig)
		case <-kill:
			fmt.Fprintf(log, "cairn-guest: %s still runs %v after SIGTERM: SIGKILL\n", app.Args[0], app.Grace)
			syscall.Kill(-pid, syscall.SIGKILL)
			kill = nil
		}
	}
}

// reap reaps every child that has ended; done once pid has, with its code.
func reap(pid int) (code int, done bool) {
	for {
		var ws unix.WaitStatus
		p, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if p <= 0 || err != nil {
			return code, done
		}
		if p == pid {
			done = true
			switch {
			case ws.Exited():
				code = ws.ExitStatus()
			case ws.Signaled():
				code = 128 + int(ws.Signal())
			}
		}
	}
}

// reapAny waits a moment for one more child; false when none is left.
func reapAny() bool {
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		var ws unix.WaitStatus
		p, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.ECHILD) {
			return false
		}
		if p > 0 {
			return true
		}
		time.Sleep(5 * time.Millisecond)
	}
	return false
}

func start(app App) (int, error) {
	uid, gid, err := ParseUser(app.User)
	if err != nil {
		return 0, err
	}
	path, err := lookPath(app.Args[0], app.Env)
	if err != nil {
		return 0, err
	}
	cwd := app.Cwd
	if cwd == "" {
		cwd = "/"
	}
	attr := &syscall.SysProcAttr{Setpgid: true}
	if uid != 0 || gid != 0 {
		attr.Credential = &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	defer devnull.Close()
	pid, err := syscall.ForkExec(path, app.Args, &syscall.ProcAttr{
		Dir: cwd, Env: app.Env, Sys: attr,
		Files: []uintptr{devnull.Fd(), app.Out.Fd(), app.Out.Fd()},
	})
	return pid, err
}

// lookPath finds a command without a slash on the PATH of env.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found on PATH %s", name, path)
}
