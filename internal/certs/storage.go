package certs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io/fs"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/cairnhq/cairn/internal/meta"
)

// Lock timing of Storage: a held lock is renewed every lockRenew and lapses
// lockTTL after its holder stopped renewing it (a crashed process); a
// waiting Lock polls every lockPoll.
var (
	lockTTL   = time.Minute
	lockRenew = 20 * time.Second
	lockPoll  = 250 * time.Millisecond
)

// Storage is certmagic's Storage over the metadata store (meta.Certs), so
// that every edge process on one database shares certificates, keys and
// the ACME account, and obtains each certificate once.
type Storage struct {
	m meta.Certs

	mu   sync.Mutex
	held map[string]heldLock
}

type heldLock struct {
	owner string
	stop  context.CancelFunc
	done  chan struct{}
}

var _ certmagic.Storage = (*Storage)(nil)

// NewStorage returns a Storage over m.
func NewStorage(m meta.Certs) *Storage {
	return &Storage{m: m, held: map[string]heldLock{}}
}

// Store puts value at key.
func (s *Storage) Store(ctx context.Context, key string, value []byte) error {
	return s.m.PutCert(ctx, key, value)
}

// Load returns the value at key; fs.ErrNotExist if there is none.
func (s *Storage) Load(ctx context.Context, key string) ([]byte, error) {
	v, _, err := s.m.GetCert(ctx, key)
	return v, notExist(err)
}

// Delete deletes key and every key under it; none is not an error.
func (s *Storage) Delete(ctx context.Context, key string) error {
	return s.m.DeleteCerts(ctx, key)
}

// Exists reports whether key is a key or a prefix ("directory") of one.
func (s *Storage) Exists(ctx context.Context, key string) bool {
	es, err := s.m.ListCerts(ctx, key)
	return err == nil && len(es) > 0
}

// List returns the keys under path: every one if recursive, else the
// direct children (a child that is a "directory" is listed once).
// fs.ErrNotExist if there is none.
func (s *Storage) List(ctx context.Context, path string, recursive bool) ([]string, error) {
	es, err := s.m.ListCerts(ctx, path)
	if err != nil {
		return nil, err
	}
	prefix := strings.TrimSuffix(path, "/")
	if prefix != "" {
		prefix += "/"
	}
	var out []string
	seen := map[string]bool{}
	for _, e := range es {
		rest, ok := strings.CutPrefix(e.Key, prefix)
		if !ok || rest == "" {
			continue
		}
		k := e.Key
		if !recursive {
			child, _, _ := strings.Cut(rest, "/")
			k = prefix + child
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		return nil, fs.ErrNotExist
	}
	return out, nil
}

// Stat describes key: a stored value (terminal) or a prefix of some.
func (s *Storage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	es, err := s.m.ListCerts(ctx, key)
	if err != nil {
		return certmagic.KeyInfo{}, err
	}
	if len(es) == 0 {
		return certmagic.KeyInfo{}, fs.ErrNotExist
	}
	if es[0].Key == key {
		return certmagic.KeyInfo{Key: key, Modified: es[0].Modified, Size: es[0].Size, IsTerminal: true}, nil
	}
	return certmagic.KeyInfo{Key: key, Modified: es[0].Modified, IsTerminal: false}, nil
}

// Lock takes lock name, waiting until it is free or stale, and keeps it
// renewed until Unlock. A lock is stale lockTTL after its holder last
// renewed it. Two Locks of one name block each other in one process too.
func (s *Storage) Lock(ctx context.Context, name string) error {
	owner := randomOwner()
	for {
		ok, err := s.m.LockCert(ctx, name, owner, lockTTL)
		if err != nil {
			return err
		}
		if ok {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(lockPoll):
		}
	}
	rctx, stop := context.WithCancel(context.Background())
	h := heldLock{owner: owner, stop: stop, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		t := time.NewTicker(lockRenew)
		defer t.Stop()
		for {
			select {
			case <-rctx.Done():
				return
			case <-t.C:
				s.m.LockCert(rctx, name, owner, lockTTL)
			}
		}
	}()
	s.mu.Lock()
	s.held[name] = h
	s.mu.Unlock()
	return nil
}

// Unlock releases lock name taken by Lock on s.
func (s *Storage) Unlock(ctx context.Context, name string) error {
	s.mu.Lock()
	h, ok := s.held[name]
	delete(s.held, name)
	s.mu.Unlock()
	if !ok {
		return errors.New("certs: unlock of " + name + ": not locked by this process")
	}
	h.stop()
	<-h.done
	return s.m.UnlockCert(ctx, name, h.owner)
}

func notExist(err error) error {
	if errors.Is(err, meta.ErrNotFound) {
		return fs.ErrNotExist
	}
	return err
}

func randomOwner() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
