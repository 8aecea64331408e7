package router

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/blob/fs"
	"github.com/cairnhq/cairn/internal/edge"
	"github.com/cairnhq/cairn/internal/hostapi"
	"github.com/cairnhq/cairn/internal/meta"
)

// startEdge serves a real edge (with its coalescing listener) whose
// dynamic versions go through e.rt, and returns a client that sends every
// request to it whatever the URL's host.
func startEdge(t *testing.T, e *env) (*http.Client, string) {
	t.Helper()
	blobs, err := fs.New(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	ed := edge.New(edge.Config{Meta: e.store, Blobs: blobs, BaseDomain: "localhost", Dynamic: e.rt})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); ed.Run(ctx) }()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: ed}
	go srv.Serve(edge.Coalesce(srv, ln))
	t.Cleanup(func() { srv.Close(); cancel(); <-done })
	addr := ln.Addr().String()
	d := &net.Dialer{}
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return d.DialContext(ctx, "tcp", addr)
	}}}
	t.Cleanup(c.CloseIdleConnections)
	return c, addr
}

// TestThroughEdge: {name}.{base} reaches the active version's instances
// and {name}--v{N}.{base} version N's, any method; an activation moves the
// host; streams and WebSockets pass the edge's coalescing connections.
func TestThroughEdge(t *testing.T) {
	e := newEnv(t)
	v1 := e.version(true)
	v2 := e.version(false)
	next := make(chan struct{})
	var n1, n2 atomic.Int64
	e.instance(v1, hostapi.StateHealthy, startInstance(t, named("one", &n1)))
	e.instance(v2, hostapi.StateHealthy, startInstance(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ws":
			echoWS(t, w, r)
		case "/stream":
			io.WriteString(w, "first\n")
			w.(http.Flusher).Flush()
			<-next
			io.WriteString(w, "second\n")
		default:
			named("two", &n2)(w, r)
		}
	}))
	e.waitPool(v1, 1)
	e.waitPool(v2, 1)
	c, _ := startEdge(t, e)
	if code, body, _ := get(t, c, "http://app.localhost/"); code != 200 || body != "one" {
		t.Fatalf("active = %d %q", code, body)
	}
	if code, body, _ := get(t, c, "http://app--v2.localhost/x"); code != 200 || body != "two" {
		t.Fatalf("preview v2 = %d %q", code, body)
	}
	if code, _, _ := get(t, c, "http://app--v9.localhost/"); code != 404 {
		t.Fatalf("preview of no version = %d", code)
	}
	resp, err := c.Post("http://app.localhost/form", "text/plain", strings.NewReader("data"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "one" {
		t.Fatalf("POST = %d %q", resp.StatusCode, b)
	}
	testStream(t, c, "http://app--v2.localhost/stream", next)
	wsc := &http.Client{Transport: c.Transport}
	testWebSocketClient(t, wsc, "ws://app--v2.localhost/ws")

	if _, err := e.store.Activate(context.Background(), e.dep.ID, v2.VersionNumber, "test", meta.ActionActivate); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Second)
	for {
		_, body, _ := get(t, c, "http://app.localhost/")
		if body == "two" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still %q a second after the activation", body)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
