package publish

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"
)

// DefaultSessionTTL is how long an incremental publish may stay idle (no
// content uploaded, not assembled) before it expires.
const DefaultSessionTTL = time.Hour

// Sessions holds the incremental publishes under way in this process. One
// idle for longer than TTL expires: Sweep closes it, which removes its
// staging directory and every part uploaded to it, so an abandoned publish
// leaves nothing behind.
type Sessions struct {
	TTL time.Duration    // 0: DefaultSessionTTL
	Now func() time.Time // nil: time.Now

	mu sync.Mutex
	m  map[string]*session
}

type session struct {
	inc   *Incremental
	depID string
	seen  time.Time
	busy  int // callers holding it (Get without Put)
}

func (s *Sessions) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Sessions) ttl() time.Duration {
	if s.TTL > 0 {
		return s.TTL
	}
	return DefaultSessionTTL
}

// Add registers inc, a publish to deployment depID, and returns its id.
func (s *Sessions) Add(depID string, inc *Incremental) string {
	var b [16]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]*session{}
	}
	s.m[id] = &session{inc: inc, depID: depID, seen: s.now()}
	return id
}

// Get returns publish id of deployment depID and holds it (it does not
// expire) until the caller calls the returned release. Unknown or expired:
// 404 publish-unknown.
func (s *Sessions) Get(id, depID string) (*Incremental, func(), error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.m[id]
	if !ok || x.depID != depID {
		return nil, nil, refuse(ErrPublishUnknown, "no incremental publish %s under way (it may have expired): start again", id)
	}
	x.busy++
	x.seen = s.now()
	return x.inc, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		x.busy--
		x.seen = s.now()
	}, nil
}

// Remove ends publish id (assembled, or given up) and removes its parts.
func (s *Sessions) Remove(id string) {
	s.mu.Lock()
	x, ok := s.m[id]
	delete(s.m, id)
	s.mu.Unlock()
	if ok {
		x.inc.Close()
	}
}

// Sweep removes the publishes idle for longer than TTL and answers how
// many. Run it periodically.
func (s *Sessions) Sweep() int {
	cutoff := s.now().Add(-s.ttl())
	var gone []*Incremental
	s.mu.Lock()
	for id, x := range s.m {
		if x.busy == 0 && x.seen.Before(cutoff) {
			gone = append(gone, x.inc)
			delete(s.m, id)
		}
	}
	s.mu.Unlock()
	for _, inc := range gone {
		inc.Close()
	}
	return len(gone)
}

// Len is the number of publishes under way.
func (s *Sessions) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
