package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cairnhq/cairn/internal/client"
	"github.com/cairnhq/cairn/internal/ignore"
	"github.com/cairnhq/cairn/internal/meta"
)

// buildFlags are publish's flags of a build on the platform (--build).
type buildFlags struct {
	command, output, builder, host string
	env                            []string
	timeout                        time.Duration
	memory                         sizeValue
	epoch                          int64
	network                        bool
	flags                          *pflag.FlagSet
}

// buildOnly are the flags that need --build.
var buildOnly = []string{"output", "builder", "build-env", "build-timeout", "build-memory", "host", "source-date-epoch", "build-network"}

func (b *buildFlags) register(f *pflag.FlagSet) {
	b.flags = f
	f.StringVar(&b.command, "build", "", "build on the platform: run CMD (/bin/sh -c) in the --source snapshot; its --output is the release")
	f.StringVar(&b.output, "output", "dist", "--build: the directory of the source tree that CMD fills with the release")
	f.StringVar(&b.builder, "builder", "", "--build: the toolchain, a rootfs version NAME:N or sha256:HEX (required with --build)")
	f.StringArrayVar(&b.env, "build-env", nil, "--build: an environment variable K=V for CMD (repeatable)")
	f.DurationVar(&b.timeout, "build-timeout", 0, "--build: how long CMD may run (default: the server's, 10m; at most 1h)")
	f.Var(&b.memory, "build-memory", "--build: memory limit of the build, e.g. 2GiB (default: the server's, 1GiB)")
	f.StringVar(&b.host, "host", "", "--build: only this host may run the build")
	f.BoolVar(&b.network, "build-network", false, "--build: give the build network (an address with egress, as an instance's); recorded, rebuilds have it too, and its output then depends on what the network served")
	f.Int64Var(&b.epoch, "source-date-epoch", 0, "--build: the build's SOURCE_DATE_EPOCH, in seconds (default: the time of SRC's last git commit, else when the server first stored the snapshot)")
}

// unused fails when a flag that needs --build was given without it.
func (b *buildFlags) unused(cmd *cobra.Command) error {
	for _, n := range buildOnly {
		if cmd.Flags().Changed(n) {
			return fmt.Errorf("--%s needs --build", n)
		}
	}
	return nil
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// request makes the body of POST /v1/deployments/{dep}/builds.
func (b *buildFlags) request(o publishOptions, source string, create bool) (client.BuildRequest, error) {
	req := client.BuildRequest{SourceSHA256: source, Builder: b.builder, Command: b.command, Output: b.output,
		MemoryBytes: int64(b.memory), Entrypoint: o.entrypoint, Activate: !o.noActivate, Create: create, Host: b.host, Network: b.network}
	for _, kv := range b.env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || !envName.MatchString(k) {
			return req, fmt.Errorf("--build-env: %q is not K=V with K a variable name", kv)
		}
		if req.Env == nil {
			req.Env = map[string]string{}
		}
		req.Env[k] = v
	}
	if b.timeout < 0 {
		return req, fmt.Errorf("--build-timeout: %s is negative", b.timeout)
	}
	if b.timeout > 0 {
		req.Timeout = b.timeout.String()
	}
	if b.flags != nil && b.flags.Changed("source-date-epoch") {
		if b.epoch <= 0 {
			return req, fmt.Errorf("--source-date-epoch: %d is not a time after 1970 in seconds", b.epoch)
		}
		req.SourceDateEpoch = &b.epoch
	}
	return req, nil
}

// gitEpoch is the time of the last commit of the git work tree that holds
// dir (`git log -1 --format=%ct`), or nil when dir is in none, git is not
// installed, or it fails: the build's SOURCE_DATE_EPOCH then is the
// server's default. The snapshot holds the work tree as it is, changes not
// committed too; the time is HEAD's, of the whole repository.
func gitEpoch(ctx context.Context, dir string) *int64 {
	git, err := exec.LookPath("git")
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// log.showSignature would print a signature's check before the time.
	cmd := exec.CommandContext(ctx, git, "-c", "log.showSignature=false", "-C", dir, "log", "-1", "--format=%ct")
	out, err := cmd.Output()
	if err != nil {
		return nil
	}
	// A commit dated past tomorrow (a clock gone wrong) is one the server
	// would refuse.
	t, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil || t <= 0 || t > time.Now().Add(24*time.Hour).Unix() {
		return nil
	}
	return &t
}

// buildOutput is what --json prints of a build: the record, the version
// it made, the snapshot it built from, and, when it failed, its log's end.
type buildOutput struct {
	Source  *sourceOutput `json:"source,omitempty"`
	Build   *meta.Build   `json:"build"`
	Version *meta.Version `json:"version,omitempty"`
	LogTail []string      `json:"log_tail,omitempty"`
}

// publishBuild is `publish --source SRC --build CMD`: snapshot, upload
// what the server lacks, ask for the build, wait for it, print the
// version it made.
func (a *app) publishBuild(ctx context.Context, o publishOptions) error {
	switch {
	case o.source == "":
		return errors.New("--build needs --source DIR, the tree to build")
	case o.b.builder == "":
		return errors.New("--build needs --builder NAME:N or sha256:HEX, a rootfs version with the build's tools")
	case o.kind != meta.KindStatic:
		return fmt.Errorf("--build makes a static release (not --kind %s)", o.kind)
	case o.rt.set():
		return errors.New("--cmd, --env, --port, --user, --workdir and --health-* need --kind rootfs, not --build")
	case o.includeIgnored:
		return errors.New("--include-ignored: a snapshot always leaves out what the rules and the .gitignore say")
	}
	if _, err := o.b.request(o, "", false); err != nil { // flags checked before any work
		return err
	}
	var err error
	if o.src, err = a.snapshotSource(ctx, o.source); err != nil {
		return err
	}
	defer o.src.remove()
	c := a.client()
	dep, err := a.publishTarget(ctx, c, o, meta.KindStatic, "deployment %s is of kind %s; a build makes a static release")
	if err != nil {
		return err
	}
	if err := a.sendSourceOf(ctx, c, o); err != nil {
		return err
	}
	req, _ := o.b.request(o, o.src.SHA256, dep == nil)
	if req.SourceDateEpoch == nil {
		req.SourceDateEpoch = gitEpoch(ctx, o.source)
	}
	b, err := c.CreateBuild(ctx, o.deployment, req)
	if err != nil {
		return fmt.Errorf("building %s: %w", o.deployment, err)
	}
	if b, err = a.waitBuild(ctx, c, b, o.deployment); err != nil {
		return err
	}
	if b.State != meta.BuildSucceeded {
		return a.buildFailed(ctx, c, b, &buildOutput{Source: &o.src.sourceOutput, Build: b},
			fmt.Sprintf("build %s of %s failed", b.ID, o.deployment), "; nothing was published")
	}
	if b.VersionNumber < 1 {
		return fmt.Errorf("build %s of %s succeeded but names no version (cairn versions %s)", b.ID, o.deployment, o.deployment)
	}
	v, err := c.GetVersion(ctx, o.deployment, b.VersionNumber)
	if err != nil {
		return fmt.Errorf("build %s made %s v%d: %w", b.ID, o.deployment, b.VersionNumber, err)
	}
	if a.json {
		if err := printJSON(a.stdout, buildOutput{Source: &o.src.sourceOutput, Build: b, Version: v}); err != nil {
			return err
		}
	} else {
		if err := a.printPublished(v, dep == nil, o, ignore.Summary{}, nil); err != nil {
			return err
		}
		net := ""
		if b.Network {
			net = ", with network"
		}
		fmt.Fprintf(a.stdout, "built by %s in %s on %s (builder %s%s; cairn logs --build %s)\n",
			b.ID, msDuration(b.DurationMS), dash(b.Host), builderName(b.BuildSpec), net, b.ID)
	}
	if o.domain == "" {
		return nil
	}
	return a.attachDomain(ctx, c, o, v)
}

// buildPoll is how often the CLI asks how a build goes.
var buildPoll = 500 * time.Millisecond

// waitBuild follows b until it ends, printing its state changes on
// stderr (not with --json). An interrupt stops the waiting, not the
// build (errWaitStopped).
func (a *app) waitBuild(ctx context.Context, c *client.Client, b *meta.Build, dep string) (*meta.Build, error) {
	if !a.json {
		fmt.Fprintf(a.stderr, "%s %s: %s (Ctrl-C stops waiting, not the %s)\n", b.Kind, b.ID, b.State, b.Kind)
	}
	last := b.State
	for b.State != meta.BuildSucceeded && b.State != meta.BuildFailed {
		select {
		case <-ctx.Done():
			return nil, waitStopped{b.ID, b.Kind, dep}
		case <-time.After(buildPoll):
		}
		nb, err := c.GetBuild(ctx, b.ID)
		if err != nil {
			if ctx.Err() != nil {
				return nil, waitStopped{b.ID, b.Kind, dep}
			}
			return nil, fmt.Errorf("following %s %s, which goes on (cairn builds %s): %w", b.Kind, b.ID, dep, err)
		}
		b = nb
		if b.State != last && !a.json {
			fmt.Fprintf(a.stderr, "%s %s: %s\n", b.Kind, b.ID, stateLine(b))
		}
		last = b.State
	}
	return b, nil
}

// stateLine says where a build is: "running on h1", "succeeded in 4.2s".
func stateLine(b *meta.Build) string {
	switch b.State {
	case meta.BuildRunning:
		return "running on " + dash(b.Host)
	case meta.BuildSucceeded, meta.BuildFailed:
		return b.State + " in " + msDuration(b.DurationMS)
	}
	return b.State
}

// logTailLines is how much of a failed build's log is shown.
const logTailLines = 20

// buildFailed shows a build that did not succeed: with --json out (with
// the log's end) on stdout, else the log's end on stderr; it returns the
// error what+why+after.
func (a *app) buildFailed(ctx context.Context, c *client.Client, b *meta.Build, out *buildOutput, what, after string) error {
	log, lerr := c.BuildLog(ctx, b.ID)
	tail := lastLines(log, logTailLines)
	if a.json {
		out.LogTail = tail
		printJSON(a.stdout, out)
	} else if len(tail) > 0 {
		fmt.Fprintf(a.stderr, "the last %d lines of its log (cairn logs --build %s):\n", len(tail), b.ID)
		for _, l := range tail {
			fmt.Fprintf(a.stderr, "  | %s\n", l)
		}
	} else if lerr != nil {
		fmt.Fprintf(a.stderr, "cairn: its log: %v\n", lerr)
	}
	return fmt.Errorf("%s: %s%s", what, buildError(b), after)
}

// buildError says why a build failed.
func buildError(b *meta.Build) string {
	why := b.Error
	if why == "" {
		why = b.State
	}
	if b.ExitCode != nil && !strings.Contains(why, "exit") {
		why += fmt.Sprintf(" (exit code %d)", *b.ExitCode)
	}
	return why
}

// lastLines returns the last n non-empty-terminated lines of s.
func lastLines(s string, n int) []string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return nil
	}
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}

// msDuration formats milliseconds: 850ms, 4.2s, 3m12s.
func msDuration(ms int64) string {
	d := time.Duration(ms) * time.Millisecond
	switch {
	case d < time.Second:
		return d.String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// builderName is how a build names its builder: as asked, else its digest.
func builderName(s meta.BuildSpec) string {
	if s.BuilderRef != "" {
		return s.BuilderRef
	}
	return "sha256:" + shortSHA(s.Builder) + "…"
}

// waitStopped: an interrupt stopped the waiting for a build, which goes
// on on the server.
type waitStopped struct{ id, kind, dep string }

func (w waitStopped) Error() string {
	return fmt.Sprintf("stopped waiting; %s %s goes on (cairn builds %s, cairn logs --build %s)", w.kind, w.id, w.dep, w.id)
}
