package server

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
)

// TestFailedStartClosesListeners: a start that fails after opening some
// listeners (here the API address is taken) leaves none of them bound.
func TestFailedStartClosesListeners(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	free := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}
	cfg := Default()
	cfg.DataDir = t.TempDir()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.APIAddr, cfg.EdgeAddr, cfg.MetricsAddr = taken.Addr().String(), free(), free()
	err = Run(t.Context(), cfg)
	if err == nil || !strings.Contains(err.Error(), "--api-addr") {
		t.Fatalf("Run = %v, want an --api-addr error", err)
	}
	for _, addr := range []string{cfg.EdgeAddr, cfg.MetricsAddr} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("%s is still bound after the failed start: %v", addr, err)
			continue
		}
		ln.Close()
	}
}
