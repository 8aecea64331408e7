package sqlite

import (
	"context"
	"fmt"
	"sync"

	"github.com/cairnhq/cairn/internal/meta"
)

// leaders are the leaderships held in this process. A SQLite database has
// one cairn process (it holds the file), so the leader is elected among
// the roles of that process alone.
type leaders struct {
	mu   sync.Mutex
	held map[string]bool
}

// TryLead makes the caller the leader named name unless another caller in
// this process is (ErrConflict). lost is closed when the Store closes.
func (s *Store) TryLead(ctx context.Context, name string) (<-chan struct{}, func(), error) {
	s.lead.mu.Lock()
	defer s.lead.mu.Unlock()
	if s.lead.held[name] {
		return nil, nil, fmt.Errorf("%w: leader %q is held", meta.ErrConflict, name)
	}
	if s.lead.held == nil {
		s.lead.held = map[string]bool{}
	}
	s.lead.held[name] = true
	var once sync.Once
	return s.closed, func() {
		once.Do(func() {
			s.lead.mu.Lock()
			delete(s.lead.held, name)
			s.lead.mu.Unlock()
		})
	}, nil
}
