package sqlite

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// PollInterval is how often a watched Store reads PRAGMA data_version to
// see commits made by other processes sharing the file. A change made by
// another process is announced within PollInterval (plus the query's time).
const PollInterval = 250 * time.Millisecond

// watchers are the channels handed out by Watch, and the poller that
// announces other processes' commits while any channel is open.
type watchers struct {
	mu      sync.Mutex
	subs    map[chan struct{}]struct{}
	polling bool
	done    chan struct{} // closed when the latest poller returns
}

// Watch returns a channel that receives a value after each committed change
// of a pointer (activate, rollback, domain add or repoint, collect) or a new
// version. Sends never block; the channel has room for one value, so a slow
// reader sees one value for several changes. The channel is closed when ctx
// ends or the Store is closed.
//
// Changes made through this Store are announced at their commit. Changes
// made by other processes sharing the file are announced within
// PollInterval: while a channel is open, one connection of the Store's read
// pool reads PRAGMA data_version, which SQLite moves whenever another
// connection commits. Such a signal says only "something changed": any
// commit moves it.
func (s *Store) Watch(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	s.watch.mu.Lock()
	if s.watch.subs == nil {
		s.watch.subs = map[chan struct{}]struct{}{}
	}
	s.watch.subs[ch] = struct{}{}
	if !s.watch.polling {
		select {
		case <-s.closed:
		default:
			s.watch.polling = true
			s.watch.done = make(chan struct{})
			go s.poll(s.watch.done)
		}
	}
	s.watch.mu.Unlock()
	go func() {
		select {
		case <-ctx.Done():
		case <-s.closed:
		}
		s.watch.mu.Lock()
		delete(s.watch.subs, ch)
		close(ch)
		s.watch.mu.Unlock()
	}()
	return ch
}

// poll reads data_version every PollInterval on a connection of its own and
// wakes the watchers when it moves. It returns, closing done, when the
// Store is closed or no channel is left.
func (s *Store) poll(done chan struct{}) {
	defer close(done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	var conn *sql.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	last := int64(-1)
	t := time.NewTicker(PollInterval)
	defer t.Stop()
	for {
		if conn == nil {
			if c, err := s.r.Conn(ctx); err == nil {
				conn = c
			}
		}
		if conn != nil {
			var v int64
			if err := conn.QueryRowContext(ctx, "PRAGMA data_version").Scan(&v); err != nil {
				conn.Close() // take another connection at the next tick
				conn = nil
			} else {
				if last >= 0 && v != last {
					s.notify()
				}
				last = v
			}
		}
		select {
		case <-ctx.Done():
			s.setPolling(false)
			return
		case <-t.C:
		}
		s.watch.mu.Lock()
		idle := len(s.watch.subs) == 0
		if idle {
			s.watch.polling = false
		}
		s.watch.mu.Unlock()
		if idle {
			return
		}
	}
}

func (s *Store) setPolling(on bool) {
	s.watch.mu.Lock()
	s.watch.polling = on
	s.watch.mu.Unlock()
}

// waitPoller waits for the latest poller, if one was started, to return.
func (s *Store) waitPoller() {
	s.watch.mu.Lock()
	done := s.watch.done
	s.watch.mu.Unlock()
	if done != nil {
		<-done
	}
}

// notify wakes every watcher without blocking.
func (s *Store) notify() {
	s.watch.mu.Lock()
	defer s.watch.mu.Unlock()
	for ch := range s.watch.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
