package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cairnhq/cairn/internal/client"
	"github.com/cairnhq/cairn/internal/hostapi"
	"github.com/cairnhq/cairn/internal/meta"
)

// builds claims builds for this host, one at a time, and runs them on
// the runtime's Builder until ctx ends (docs/design.md, "Sources, builds
// and rebuilds").
func (a *Agent) builds(ctx context.Context, b hostapi.Builder) {
	for ctx.Err() == nil {
		job, err := a.cfg.API.ClaimBuild(ctx, a.HostID(), 30*time.Second)
		if err != nil {
			if ctx.Err() == nil {
				a.cfg.Log.Warn("claiming a build", "err", err)
				sleep(ctx, 2*time.Second)
			}
			continue
		}
		if job != nil {
			a.runBuild(ctx, b, *job)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// What the API is told when the host, not the build, failed; the
// agent's log has why.
const (
	errHostFailed     = "the host could not run the build; its agent's log says why"
	errHostLostOutput = "the host lost the packed output; its agent's log says why"
)

// runBuild runs one claimed build and reports its result, with its log
// and its packed output.
func (a *Agent) runBuild(ctx context.Context, b hostapi.Builder, job hostapi.Build) {
	log := a.cfg.Log.With("build", job.ID)
	log.Info("build started", "builder", job.Builder, "source", job.Source)
	dir := filepath.Join(a.cfg.DataDir, "build-out")
	os.MkdirAll(dir, 0o700)
	f, err := os.CreateTemp(dir, "artifact-*.tar.zst")
	var res hostapi.BuildResult
	tail := &tailBuffer{max: meta.MaxBuildLog}
	if err == nil {
		defer os.Remove(f.Name())
		defer f.Close()
		res, err = b.Build(ctx, job, f, tail)
	}
	if ctx.Err() != nil {
		return // the agent stops: the API fails the build when the host claims again or is lost
	}
	// The host's errors (cache, mounts, runc, its paths) stay in this
	// log, under the build's id; the API gets a fixed text.
	if err != nil {
		log.Warn("build: the host failed", "err", err)
		res = hostapi.BuildResult{ExitCode: -1, Error: errHostFailed}
	}
	for attempt := 1; ; attempt++ {
		var artifact *os.File
		if res.Error == "" && res.ExitCode == 0 {
			if artifact, err = os.Open(f.Name()); err != nil {
				log.Warn("build: opening the packed output", "err", err)
				res = hostapi.BuildResult{ExitCode: -1, Error: errHostLostOutput}
			}
		}
		var sendErr error
		if artifact != nil {
			_, sendErr = a.cfg.API.SendBuildResult(ctx, a.HostID(), job.ID, res, tail.Bytes(), artifact)
			artifact.Close()
		} else {
			_, sendErr = a.cfg.API.SendBuildResult(ctx, a.HostID(), job.ID, res, tail.Bytes(), nil)
		}
		if sendErr == nil || ctx.Err() != nil {
			log.Info("build ended", "exit_code", res.ExitCode, "error", res.Error, "sha256", res.SHA256, "duration_ms", res.DurationMS)
			return
		}
		if attempt == 5 || isClientError(sendErr) {
			log.Warn("build: reporting the result failed; giving up", "err", sendErr)
			return
		}
		log.Warn("build: reporting the result; retrying", "err", sendErr)
		sleep(ctx, time.Duration(attempt)*time.Second)
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
	cut int64 // bytes dropped from the front
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.cut += int64(over)
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

// Bytes is the kept tail, after a line saying how much was cut.
func (t *tailBuffer) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cut == 0 {
		return append([]byte{}, t.b...)
	}
	head := fmt.Sprintf("[cairn: the first %d bytes of the log were cut]\n", t.cut)
	keep := t.b[min(len(head), len(t.b)):] // the head takes the place of as many bytes: at most max in all
	return append([]byte(head), keep...)
}

// isClientError: the API refused the request itself (4xx); sending it
// again does not help.
func isClientError(err error) bool {
	var e *client.Error
	return errors.As(err, &e) && e.Status >= 400 && e.Status < 500
}
