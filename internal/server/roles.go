package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// A role is one long-running part of a process: an HTTP server, the
// edge's watcher, the GC loop, a sweeper, the replicator. run works until
// ctx ends and then returns; an error it returns before that stops the
// whole process with that error. Adding a role is one entry in the list
// that build makes.
type role struct {
	name string
	run  func(ctx context.Context) error
}

// shutdownTimeout bounds how long an HTTP role waits for its requests in
// flight (a publish, a download) once the process stops.
const shutdownTimeout = 10 * time.Second

// supervise starts roles in order, calls started once they all run, and
// waits until ctx ends or a role fails. It then stops them in reverse
// order, each only after the ones started after it have returned, so a
// listener stops taking requests before the loops those requests use,
// and every role has returned before supervise does (the caller closes
// the stores after that). The error is the first role's failure, if any.
func supervise(ctx context.Context, roles []role, log *slog.Logger, started func()) error {
	type running struct {
		cancel context.CancelFunc
		done   chan struct{}
	}
	type failure struct {
		name string
		err  error
	}
	failed := make(chan failure, len(roles))
	rs := make([]running, 0, len(roles))
	for _, r := range roles {
		rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		rs = append(rs, running{cancel, done})
		go func() {
			defer close(done)
			if err := r.run(rctx); err != nil && rctx.Err() == nil {
				failed <- failure{r.name, err}
			}
		}()
	}
	if started != nil {
		started()
	}
	var err error
	select {
	case <-ctx.Done():
	case f := <-failed:
		err = fmt.Errorf("%s: %w", f.name, f.err)
		log.Error("role failed; stopping", "role", f.name, "err", f.err)
	}
	for i := len(rs) - 1; i >= 0; i-- {
		rs[i].cancel()
		<-rs[i].done
	}
	return err
}

// serveRole serves srv on ln until ctx ends, then shuts it down, waiting
// up to shutdownTimeout for the requests in flight.
func serveRole(name string, srv *http.Server, ln net.Listener) role {
	return role{name, func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(ln) }()
		select {
		case err := <-errc:
			return err // the listener failed
		case <-ctx.Done():
		}
		shut, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		if err := srv.Shutdown(shut); err != nil {
			srv.Close()
		}
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}}
}

// loopRole runs fn until ctx ends; fn returns when it does.
func loopRole(name string, fn func(ctx context.Context)) role {
	return role{name, func(ctx context.Context) error {
		fn(ctx)
		return nil
	}}
}
