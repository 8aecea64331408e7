package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/agent/testproc"
	"github.com/cairnhq/cairn/internal/client"
	"github.com/cairnhq/cairn/internal/hostapi"
)

// failingBuilder fails every build as a host does: with its paths in the
// error.
type failingBuilder struct{ err error }

func (f failingBuilder) Build(context.Context, hostapi.Build, io.Writer, io.Writer) (hostapi.BuildResult, error) {
	return hostapi.BuildResult{}, f.err
}

// syncBuffer is a log the agent writes and the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestBuildHostErrorNotSent: a build the host fails to run is reported
// with a fixed error; the host's error, with its paths, is in the
// agent's log under the build's id and not in the result.
func TestBuildHostErrorNotSent(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "agent", "cache", "trees", "abc", "tree")
	var (
		mu   sync.Mutex
		sent []hostapi.BuildResult
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var res hostapi.BuildResult
		if err := json.Unmarshal([]byte(r.FormValue("result")), &res); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		sent = append(sent, res)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	rt, err := testproc.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	a, err := New(Config{API: client.New(srv.URL, ""), Runtime: rt, DataDir: filepath.Join(dir, "agent"),
		MaxCrashes: 3, BackoffBase: time.Second, BackoffMax: 4 * time.Second, LastLines: 5,
		Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	b := failingBuilder{errors.New("build bld_x1: source: open " + secret + ": no such file or directory")}
	a.runBuild(t.Context(), b, hostapi.Build{ID: "bld_x1"})

	mu.Lock()
	defer mu.Unlock()
	if len(sent) != 1 {
		t.Fatalf("%d results sent, want 1", len(sent))
	}
	if got := sent[0]; got.ExitCode != -1 || got.Error != errHostFailed {
		t.Fatalf("sent %+v, want exit -1 and %q", got, errHostFailed)
	}
	if l := logs.String(); !strings.Contains(l, secret) || !strings.Contains(l, "build=bld_x1") {
		t.Fatalf("the agent's log has not the host's error under the build's id:\n%s", l)
	}
}
