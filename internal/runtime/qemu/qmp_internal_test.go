package qemu

import (
	"net"
	"path/filepath"
	"testing"
	"time"
)

// TestQMPRunBounded: a QMP socket that accepts and never greets (QEMU
// busy with another client, or too slow under TCG) fails qmpRun after
// qmpTimeout instead of hanging the Stop that called it (it hung an agent
// for minutes at a load of 30).
func TestQMPRunBounded(t *testing.T) {
	p := filepath.Join(t.TempDir(), "qmp")
	ln, err := net.Listen("unix", p)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, silent
		}
	}()
	t0 := time.Now()
	err = qmpRun(p, `{"execute":"system_powerdown"}`)
	if err == nil {
		t.Fatal("qmpRun on a silent socket succeeded")
	}
	if d := time.Since(t0); d < qmpTimeout || d > qmpTimeout+2*time.Second {
		t.Fatalf("qmpRun gave up after %v (%v); want about %v", d, err, qmpTimeout)
	}
}
