package main

import (
	"os"
	"path/filepath"
	"time"

	"github.com/cairnhq/cairn/internal/certs/pebbletest"
)

// startPebble runs Pebble (an ACME CA for tests, pebbletest.Run) in work,
// validating HTTP-01 challenges on httpPort and TLS-ALPN-01 on tlsPort of
// 127.0.0.1 and issuing certificates valid for a day. Its output goes to
// work/pebble.log. stop kills it.
func startPebble(work string, httpPort, tlsPort int) (p *pebbletest.Pebble, stop func(), err error) {
	logf, err := os.Create(filepath.Join(work, "pebble.log"))
	if err != nil {
		return nil, nil, err
	}
	p, stopPebble, err := pebbletest.Run(work, httpPort, tlsPort, 24*time.Hour, logf)
	if err != nil {
		logf.Close()
		return nil, nil, err
	}
	return p, func() { stopPebble(); logf.Close() }, nil
}
