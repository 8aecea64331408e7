package server

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestEdgeTLS: with --edge-tls-addr the server opens a TLS listener whose
// handshake for a name that is no registered domain fails with a TLS
// alert (the ACME CA, here a closed port, is never asked), and the plain
// edge still serves; a bad --acme-root stops the start with the flag's
// name. (Issuance against a real ACME server: internal/certs TestPebble.)
func TestEdgeTLS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsAddr := ln.Addr().String()
	ln.Close()
	cfg := Default()
	cfg.DataDir = t.TempDir()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.APIAddr, cfg.EdgeAddr, cfg.EdgeTLSAddr = "127.0.0.1:0", "127.0.0.1:0", tlsAddr
	cfg.ACMECA = "https://127.0.0.1:1/dir"
	if n := cfg.listeners(); n != 3 {
		t.Fatalf("listeners() = %d, want 3 (api, edge, edge TLS)", n)
	}
	edgeAddr := make(chan string, 1)
	cfg.Ready = func(_, edge string) { edgeAddr <- edge }
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()
	t.Cleanup(func() { cancel(); <-done })
	var edge string
	select {
	case edge = <-edgeAddr:
	case err := <-done:
		t.Fatal(err)
	}
	_, err = tls.Dial("tcp", tlsAddr, &tls.Config{ServerName: "nobody.example.test", InsecureSkipVerify: true})
	if err == nil || !strings.Contains(err.Error(), "tls: ") {
		t.Fatalf("handshake for an unregistered name: %v, want a TLS alert", err)
	}
	resp, err := http.Get("http://" + edge + "/.well-known/acme-challenge/none")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("plain edge: %d, want 404", resp.StatusCode)
	}

	bad := Default()
	bad.DataDir = t.TempDir()
	bad.Logger = cfg.Logger
	bad.APIAddr, bad.EdgeAddr, bad.EdgeTLSAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	bad.ACMERoot = filepath.Join(t.TempDir(), "missing.pem")
	if err := Run(t.Context(), bad); err == nil || !strings.Contains(err.Error(), "--acme-root") {
		t.Fatalf("missing --acme-root file: %v", err)
	}
}
