package meta

import (
	"context"
	"time"
)

// CertEntry is one stored key of Certs.
type CertEntry struct {
	Key      string
	Modified time.Time
	Size     int64
}

// Certs stores the edge's ACME state (certificates, private keys, ACME
// accounts) in a flat key space of '/'-separated names, and holds named
// locks across processes, so that every edge process shares one
// certificate per hostname (internal/certs adapts it to certmagic's
// Storage). No method appends an event: certificates are not records a
// user made.
type Certs interface {
	// PutCert stores value at key, replacing what was there.
	PutCert(ctx context.Context, key string, value []byte) error
	// GetCert returns the value at key and when it was stored; ErrNotFound.
	GetCert(ctx context.Context, key string) ([]byte, time.Time, error)
	// DeleteCerts deletes key and every key under key+"/"; none is not an
	// error.
	DeleteCerts(ctx context.Context, key string) error
	// ListCerts returns every key equal to prefix or under prefix+"/"
	// ("" lists all), ordered by key.
	ListCerts(ctx context.Context, prefix string) ([]CertEntry, error)
	// LockCert takes lock name for owner until now+ttl if it is free,
	// expired or already owner's (which renews it), and reports whether it
	// did. It never blocks.
	LockCert(ctx context.Context, name, owner string, ttl time.Duration) (bool, error)
	// UnlockCert releases owner's lock name; a lock not held by owner is
	// left as it is (not an error).
	UnlockCert(ctx context.Context, name, owner string) error
}
