package sqlite

import (
	"context"
	"sync"
)

// watchers are the channels handed out by Watch.
type watchers struct {
	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

// Watch returns a channel that receives a value after each committed change
// of a pointer (activate, rollback, domain add or repoint, collect) or a new
// version. Sends never block; the channel has room for one value, so a slow
// reader sees one value for several changes. The channel is closed when ctx
// ends or the Store is closed. Changes made by other processes sharing the
// file are not announced.
func (s *Store) Watch(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	s.watch.mu.Lock()
	if s.watch.subs == nil {
		s.watch.subs = map[chan struct{}]struct{}{}
	}
	s.watch.subs[ch] = struct{}{}
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
