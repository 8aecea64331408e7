// Command cairn is the release plane's one binary: `cairn server` runs the
// API, edge and gc roles, and the other commands are a client of the HTTP
// API (pack, publish, versions, activate, rollback, domain, gc, audit).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second signal kills the process at once
	}()
	a := newApp(os.Stdout, os.Stderr, os.Getenv)
	a.stderrTTY = term.IsTerminal(int(os.Stderr.Fd()))
	code := a.run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
