package runtime

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cairnhq/cairn/internal/hostapi"
	"github.com/cairnhq/cairn/internal/release"
	"github.com/cairnhq/cairn/internal/runtime/overlay"
)

// A build (hostapi.Builder) runs in Dir/builds/ID, ID being "b-" and
// the record id's suffix:
//
//	upper/src/   the source snapshot, copied from the cache before the mount
//	upper, work, root/   the overlay over the builder's tree (as an instance's)
//	bundle/, log         the driver's bundle; stdout and stderr
//	artifact             the packed output, before it is handed over
//
// What the build writes to its root (upper, /src included) is bounded by
// Build.DiskBytes (builddisk.go).
//
// Its network namespace (netns.Manager.Isolated) has a loopback and
// nothing else, unless Build.Network: then the namespace (loopback up,
// not a spare of the pool) also gets an address on the host's bridge
// with egress, as an instance with Egress has (netns.Manager.Add), and
// /etc/resolv.conf lists the host's resolvers; the file "net" in the
// build's directory says so, so that whoever removes the build releases
// the address (Manager.Del), not only the namespace. Everything goes
// when Build returns; a process that dies during a build leaves it for
// the next Runtime (New) to remove.

var buildIDRE = regexp.MustCompile(`^bld_[a-z0-9]{1,60}$`)

// buildEnv is a build's fixed environment, before SOURCE_DATE_EPOCH and
// the build's own.
var buildEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"HOME=/root", "LANG=C.UTF-8", "LC_ALL=C.UTF-8", "TZ=UTC",
}

// DefaultPackLimits bound a build's output as the server's defaults
// bound a publish (--max-files, --max-bytes).
var DefaultPackLimits = release.Limits{MaxFiles: 100_000, MaxBytes: 10 << 30}

var _ hostapi.Builder = (*Runtime)(nil)

func (r *Runtime) buildDir(id string) string { return filepath.Join(r.cfg.Dir, "builds", id) }

// Build implements hostapi.Builder. The artifact is packed into a file
// of the build first: artifact is written only once the pack succeeded,
// so a refused output writes nothing to it.
func (r *Runtime) Build(ctx context.Context, b hostapi.Build, artifact, log io.Writer) (res hostapi.BuildResult, err error) {
	timeout, err := checkBuild(b)
	if err != nil {
		return res, err
	}
	// A microVM driver would run the build on an image of the root: its
	// writes, the output, would not be in the merged root.
	if r.cfg.Driver.Isolation() != hostapi.IsolationContainer {
		return res, fmt.Errorf("build %s: builds run with a container driver (runc), not %s", b.ID, r.cfg.Driver.Name())
	}
	if log == nil {
		log = io.Discard
	}
	id := "b-" + strings.TrimPrefix(b.ID, "bld_")
	defer r.lock(id)()
	if err := r.removeBuild(id); err != nil { // an earlier attempt's
		return res, err
	}
	bl, err := r.cfg.Cache.Acquire(ctx, b.Builder, b.BuilderTree)
	if err != nil {
		return res, fmt.Errorf("build %s: builder: %w", b.ID, err)
	}
	defer bl.Release()
	sl, err := r.cfg.Cache.Acquire(ctx, b.Source, b.SourceTree)
	if err != nil {
		return res, fmt.Errorf("build %s: source: %w", b.ID, err)
	}
	defer sl.Release()

	dir := r.buildDir(id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return res, err
	}
	defer func() {
		if terr := r.removeBuild(id); terr != nil {
			r.cfg.Log.Warn("build teardown", "id", id, "err", terr)
			err = errors.Join(err, fmt.Errorf("build %s: teardown: %w", b.ID, terr))
		}
	}()
	root := overlay.Root{Lower: bl.Dir, Dir: dir}
	if err := os.MkdirAll(root.Upper(), 0o755); err != nil {
		return res, err
	}
	if err := copySource(sl.Dir, root.Upper(), b.SourceDateEpoch); err != nil {
		return res, fmt.Errorf("build %s: copy the source: %w", b.ID, err)
	}
	if err := root.Mount(r.files(id, b.Network)); err != nil {
		return res, fmt.Errorf("build %s: %w", b.ID, err)
	}
	if err := r.buildNet(ctx, id, b.Network); err != nil {
		return res, fmt.Errorf("build %s: network namespace: %w", b.ID, err)
	}
	logPath := filepath.Join(dir, "log")
	if err := os.WriteFile(logPath, nil, 0o600); err != nil {
		return res, err
	}
	tail, err := os.Open(logPath)
	if err != nil {
		return res, err
	}
	defer tail.Close()
	spec := Spec{
		ID: id, Dir: dir, Root: root.Merged(), NetNS: r.cfg.Net.Path(id), Log: logPath,
		// $0 of the outer sh is the command: umask first, then the
		// command as `sh -c` would run it.
		Args: []string{"/bin/sh", "-c", `umask 022 && exec /bin/sh -c "$0"`, b.Command},
		Env:  buildEnvOf(b), Cwd: "/src", Limits: b.Limits,
	}
	t0 := time.Now()
	if err := r.cfg.Driver.Start(ctx, spec); err != nil {
		io.Copy(log, tail)
		return res, fmt.Errorf("build %s: %w", b.ID, err)
	}
	t1 := time.Now()
	disk := cmp.Or(b.DiskBytes, DefaultBuildDiskBytes)
	stopDisk := r.watchDisk(id, root.Upper(), disk)
	defer stopDisk()
	code, timedOut, ended, err := r.waitBuild(ctx, id, t1.Add(timeout), tail, log)
	res.DurationMS = ended.Sub(t1).Milliseconds()
	overDisk := stopDisk()
	if err != nil {
		return res, fmt.Errorf("build %s: %w", b.ID, err)
	}
	io.Copy(log, tail)
	r.cfg.Log.Debug("build ran", "id", id, "start", t1.Sub(t0), "ran", time.Since(t1), "exit", code)
	res.ExitCode = code
	switch {
	case overDisk:
		res.ExitCode, res.Error = -1, "killed: wrote more than "+sizeWords(disk)
		return res, nil
	case timedOut:
		res.ExitCode, res.Error = -1, "timed out after "+timeout.String()
		return res, nil
	case code == 137 && b.Limits.MemoryBytes > 0:
		// SIGKILL, from no one of ours: most likely the memory limit's
		// OOM killer (the cgroup that would say so is gone by now).
		res.Error = "killed (exit 137): out of memory?"
		return res, nil
	case code != 0:
		return res, nil
	case diskUsage(root.Upper(), disk) > disk: // written since the last look
		res.Error = "wrote more than " + sizeWords(disk)
		return res, nil
	}
	// Error names the build's paths only (buildout.go).
	lim := r.packLimits()
	out, msg := outputDir(root.Merged(), b.Output)
	if msg == "" {
		msg = checkOutput(out, b.Output, lim)
	}
	if msg != "" {
		res.Error = msg
		return res, nil
	}
	sha, msg, err := r.pack(ctx, out, lim, filepath.Join(dir, "artifact"), artifact)
	if err != nil {
		return res, fmt.Errorf("build %s: %w", b.ID, err)
	}
	if msg != "" {
		shown := b.Output
		if shown == "." {
			shown = "/src"
		}
		res.Error = "output " + quoted(shown) + ": " + msg
		return res, nil
	}
	res.SHA256 = sha
	return res, nil
}

// checkBuild validates b and returns its timeout.
func checkBuild(b hostapi.Build) (time.Duration, error) {
	bad := func(format string, a ...any) (time.Duration, error) {
		return 0, fmt.Errorf("build %q: %s", b.ID, fmt.Sprintf(format, a...))
	}
	if !buildIDRE.MatchString(b.ID) {
		return bad("id: want bld_ and [a-z0-9]")
	}
	for name, h := range map[string]string{"builder": b.Builder, "builder_tree": b.BuilderTree, "source": b.Source, "source_tree": b.SourceTree} {
		if _, err := hex.DecodeString(h); err != nil || len(h) != 64 || strings.ToLower(h) != h {
			return bad("%s %q: want a sha256 in lowercase hex", name, h)
		}
	}
	if strings.TrimSpace(b.Command) == "" || strings.ContainsRune(b.Command, 0) {
		return bad("no command")
	}
	o := b.Output
	if o == "" || path.IsAbs(o) || path.Clean(o) != o || o == ".." || strings.HasPrefix(o, "../") || strings.ContainsRune(o, 0) {
		return bad("output %q: want a clean relative path inside /src", o)
	}
	for k, v := range b.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			return bad("env %q: bad name or value", k)
		}
	}
	if b.DiskBytes < 0 {
		return bad("disk_bytes %d: want 0 (the default) or more", b.DiskBytes)
	}
	t, err := time.ParseDuration(b.Timeout)
	if err != nil || t <= 0 {
		return bad("timeout %q: want a positive Go duration", b.Timeout)
	}
	return t, nil
}

// buildEnvOf is the fixed environment, SOURCE_DATE_EPOCH, then b.Env by
// name; a name of b.Env that is in the fixed part replaces its value
// there.
func buildEnvOf(b hostapi.Build) []string {
	env := append(append([]string(nil), buildEnv...), "SOURCE_DATE_EPOCH="+strconv.FormatInt(b.SourceDateEpoch, 10))
	keys := make([]string, 0, len(b.Env))
	for k := range b.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
next:
	for _, k := range keys {
		for i, kv := range env {
			if strings.HasPrefix(kv, k+"=") {
				env[i] = k + "=" + b.Env[k]
				continue next
			}
		}
		env = append(env, k+"="+b.Env[k])
	}
	return env
}

// waitBuild waits for build id's process to end, copying its log as it
// grows; past deadline it kills it (timedOut). A pidfd of the process
// wakes it at the exit (ended); the driver's Status is asked then, and
// once a second in case the pid was not the process's.
func (r *Runtime) waitBuild(ctx context.Context, id string, deadline time.Time, tail *os.File, log io.Writer) (code int, timedOut bool, ended time.Time, err error) {
	pfd := -1
	start := time.Now()
	if s, err := r.cfg.Driver.Status(ctx, id); err == nil && s.Pid > 0 {
		if fd, err := unix.PidfdOpen(s.Pid, 0); err == nil {
			pfd = fd
			defer unix.Close(fd)
		}
	}
	// Without a pidfd (the process ended, or is ending, already), the
	// driver is asked every 20 ms for a second, then every 100 ms.
	logOK := true
	var asked time.Time
	for {
		if logOK {
			_, err := io.Copy(log, tail)
			logOK = err == nil // a log writer that refuses more gets no more
		}
		exited := false
		if pfd >= 0 {
			fds := []unix.PollFd{{Fd: int32(pfd), Events: unix.POLLIN}}
			n, _ := unix.Poll(fds, 200)
			exited = n > 0
			if exited && ended.IsZero() {
				ended = time.Now()
			}
		} else if time.Since(start) < time.Second {
			time.Sleep(20 * time.Millisecond)
		} else {
			time.Sleep(100 * time.Millisecond)
		}
		if err := ctx.Err(); err != nil {
			r.kill(id)
			return 0, false, time.Now(), err
		}
		if time.Now().After(deadline) {
			r.kill(id)
			return -1, true, time.Now(), nil
		}
		if !exited && pfd >= 0 && time.Since(asked) < time.Second {
			continue
		}
		if exited {
			time.Sleep(10 * time.Millisecond) // the driver notes the exit code
		}
		asked = time.Now()
		s, err := r.cfg.Driver.Status(ctx, id)
		if err != nil {
			return 0, false, time.Now(), err
		}
		if !s.Running {
			if ended.IsZero() {
				ended = time.Now()
			}
			if s.ExitCode == nil {
				return 0, false, ended, errors.New("the build's process ended without an exit code")
			}
			return *s.ExitCode, false, ended, nil
		}
	}
}

// kill kills a build's processes and waits (10 s at most) for them to end.
func (r *Runtime) kill(id string) {
	ctx := context.Background()
	r.cfg.Driver.Signal(ctx, id, syscall.SIGKILL)
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if s, err := r.cfg.Driver.Status(ctx, id); err != nil || !s.Running {
			return
		}
	}
}

// buildNet makes build id's network namespace, its loopback up; with
// network, the file "net" in its directory first, then an address on
// the bridge with egress.
func (r *Runtime) buildNet(ctx context.Context, id string, network bool) error {
	if err := r.cfg.Net.Isolated(id); err != nil || !network {
		return err
	}
	if err := os.WriteFile(filepath.Join(r.buildDir(id), "net"), nil, 0o600); err != nil {
		return err
	}
	_, err := r.cfg.Net.Add(ctx, id, true)
	return err
}

// removeBuild removes what build id holds on the host: its process, its
// root, its network namespace (and its address, when it had one) and
// its directory. Nothing there is not an error. The directory stays if
// the root cannot be unmounted or the address released, so that a later
// removal tries again.
func (r *Runtime) removeBuild(id string) error {
	dir := r.buildDir(id)
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return r.cfg.Net.Remove(id)
	}
	ctx := context.Background()
	var errs []error
	if err := r.cfg.Driver.Delete(ctx, id, true); err != nil {
		errs = append(errs, err)
	}
	rootErr := overlay.Root{Dir: dir}.Remove()
	// Del needs the namespace bound: the masquerade rules are found by
	// the address of its eth0.
	var netErr error
	if _, err := os.Lstat(filepath.Join(dir, "net")); err == nil {
		netErr = r.cfg.Net.Del(ctx, id, true)
	} else {
		netErr = r.cfg.Net.Remove(id)
	}
	errs = append(errs, rootErr, netErr)
	if rootErr == nil && netErr == nil {
		errs = append(errs, os.RemoveAll(dir))
	}
	return errors.Join(errs...)
}

// removeBuilds removes every build an earlier process left (New).
func (r *Runtime) removeBuilds() {
	des, _ := os.ReadDir(filepath.Join(r.cfg.Dir, "builds"))
	for _, de := range des {
		if err := r.removeBuild(de.Name()); err != nil {
			r.cfg.Log.Warn("remove an earlier process's build", "id", de.Name(), "err", err)
		}
	}
}
