package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/cairnhq/cairn/internal/ignore"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/cairnhq/cairn/internal/client"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/release"
)

// runtimeFlags are the runtime settings of a rootfs version.
type runtimeFlags struct {
	cmd, user, workdir                        string
	env                                       []string
	port                                      int
	healthPath, healthInterval, healthTimeout string
	flags                                     *pflag.FlagSet
}

func (r *runtimeFlags) register(f *pflag.FlagSet) {
	r.flags = f
	f.StringVar(&r.cmd, "cmd", "", `rootfs: the command, as words split at spaces or a JSON array (["nginx","-g","daemon off;"])`)
	f.StringArrayVar(&r.env, "env", nil, "rootfs: an environment variable K=V (repeatable)")
	f.IntVar(&r.port, "port", 0, "rootfs: the port the app listens on, passed as $PORT (default 8080)")
	f.StringVar(&r.user, "user", "", "rootfs: the user to run as (name, uid or uid:gid)")
	f.StringVar(&r.workdir, "workdir", "", "rootfs: the working directory (absolute)")
	f.StringVar(&r.healthPath, "health-path", "", "rootfs: the HTTP path of the health check (e.g. /healthz)")
	f.StringVar(&r.healthInterval, "health-interval", "", "rootfs: time between health checks (default 10s)")
	f.StringVar(&r.healthTimeout, "health-timeout", "", "rootfs: time a health check may take (default 2s)")
}

// set reports whether any runtime flag was given.
func (r *runtimeFlags) set() bool {
	for _, n := range []string{"cmd", "env", "port", "user", "workdir", "health-path", "health-interval", "health-timeout"} {
		if r.flags.Changed(n) {
			return true
		}
	}
	return false
}

// runtime builds the runtime object the server checks (and completes with
// its defaults).
func (r *runtimeFlags) runtime() (*meta.Runtime, error) {
	rt := &meta.Runtime{Cmd: strings.Fields(r.cmd), Workdir: r.workdir, User: r.user, Port: r.port}
	if strings.HasPrefix(strings.TrimSpace(r.cmd), "[") {
		rt.Cmd = nil
		if err := json.Unmarshal([]byte(r.cmd), &rt.Cmd); err != nil {
			return nil, fmt.Errorf("--cmd: not a JSON array of strings: %v", err)
		}
	}
	for _, kv := range r.env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--env %q: want K=V", kv)
		}
		if rt.Env == nil {
			rt.Env = map[string]string{}
		}
		rt.Env[k] = v
	}
	if r.healthPath != "" || r.healthInterval != "" || r.healthTimeout != "" {
		if r.healthPath == "" {
			return nil, errors.New("--health-interval and --health-timeout need --health-path")
		}
		rt.HealthCheck = &meta.HealthCheck{Path: r.healthPath, Interval: r.healthInterval, Timeout: r.healthTimeout}
	}
	return rt, nil
}

// uploadRootfs streams a root filesystem to the server: a directory as the
// tar release.WriteRootfsTar writes (owners, devices, hard links, xattrs),
// a file as it is.
func (a *app) uploadRootfs(ctx context.Context, c *client.Client, src string, isDir bool, rt *meta.Runtime, o publishOptions, create bool) (*meta.Version, error) {
	if !isDir {
		f, err := os.Open(src)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		v, err := c.PublishRootfs(ctx, o.deployment, f, rt, !o.noActivate, create)
		if err != nil {
			return nil, fmt.Errorf("publishing %s: %w", o.deployment, err)
		}
		return v, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	walkErr := make(chan error, 1)
	go func() {
		err := release.WriteRootfsTar(ctx, src, pw, nil)
		pw.CloseWithError(err)
		if err != nil {
			cancel()
		}
		walkErr <- err
	}()
	v, err := c.PublishRootfs(ctx, o.deployment, pr, rt, !o.noActivate, create)
	pr.CloseWithError(errUploadEnded)
	werr := <-walkErr
	if werr != nil && !errors.Is(werr, errUploadEnded) && !errors.Is(werr, io.ErrClosedPipe) &&
		!(errors.Is(werr, context.Canceled) && err != nil) {
		return nil, fmt.Errorf("reading %s: %w", src, werr)
	}
	if err != nil {
		return nil, fmt.Errorf("publishing %s: %w", o.deployment, err)
	}
	return v, nil
}

// publishRootfs publishes src, a directory or a tar stream file, as a
// rootfs version with its runtime settings. Everything that can be checked
// first is (flags, the deployment's kind, the domain); a missing
// deployment is created with its first version, so a failed publish
// changes nothing.
func (a *app) publishRootfs(ctx context.Context, src string, o publishOptions) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	rt, err := o.rt.runtime()
	if err != nil {
		return err
	}
	c := a.client()
	dep, err := a.publishTarget(ctx, c, o, meta.KindRootfs, "deployment %s has kind %s, not rootfs")
	if err != nil {
		return err
	}
	v, err := a.uploadRootfs(ctx, c, src, fi.IsDir(), rt, o, dep == nil)
	if err != nil {
		return err
	}
	if err := a.printPublished(v, dep == nil, o, ignore.Summary{}, nil); err != nil {
		return err
	}
	if o.domain == "" {
		return nil
	}
	return a.attachDomain(ctx, c, o, v)
}
