package server

import (
	"strings"
	"syscall"
	"testing"

	"github.com/cairnhq/cairn/internal/httplimit"
)

// TestConnCapFitsOpenFiles: --max-conns 0 gives each listener the default
// cap, or less so that all of them fit the open-file limit; an explicit
// cap that does not fit is refused.
func TestConnCapFitsOpenFiles(t *testing.T) {
	var saved syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &saved); err != nil {
		t.Fatal(err)
	}
	low := saved
	low.Cur = min(saved.Cur, 1024)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &saved) })

	cfg := Default()
	l, err := cfg.limits(3)
	if want := int(low.Cur-fdReserve) / 3; err != nil || l.MaxConns != min(want, httplimit.DefaultMaxConns) {
		t.Errorf("auto cap with %d open files: %d, %v; want %d", low.Cur, l.MaxConns, err, want)
	}
	if l.HeaderTimeout != httplimit.DefaultHeaderTimeout || l.BodyTimeout != httplimit.DefaultBodyTimeout || l.IdleTimeout != httplimit.DefaultIdleTimeout {
		t.Errorf("timeouts %+v", l)
	}
	cfg.MaxConns = 100
	if l, err := cfg.limits(3); err != nil || l.MaxConns != 100 {
		t.Errorf("--max-conns 100: %d, %v", l.MaxConns, err)
	}
	cfg.MaxConns = int(low.Cur)
	if _, err := cfg.limits(2); err == nil || !strings.HasPrefix(err.Error(), "--max-conns: ") {
		t.Errorf("--max-conns over the open-file limit: %v", err)
	}
}
