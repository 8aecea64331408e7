// Package token owns cairn's access tokens: their secrets and the hashes
// stored in their place (meta.Tokens), their scopes and what each scope
// allows (Principal), the parsing of an Authorization header, and the
// check of a presented secret against the bootstrap admin token and the
// stored tokens (Authenticator). The API and the registry both use it.
package token

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

// MinSecretLen is the shortest secret cairn accepts as a bootstrap token
// (--token).
const MinSecretLen = 32

// SecretPrefix starts every secret cairn makes.
const SecretPrefix = "cairn_"

// ErrInvalid: no such token, or it is expired or revoked.
var ErrInvalid = errors.New("token: unknown, expired or revoked")

// NewSecret returns a new secret: "cairn_" and 64 hex digits (256 bits).
func NewSecret() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand)
	return SecretPrefix + hex.EncodeToString(b)
}

// Hash is what the store keeps of a secret: its hex sha256. A secret has
// 256 random bits, so a fast hash is enough (nothing to brute-force).
func Hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// FromHeader returns the secret of an Authorization header value:
// "Bearer <secret>", or with basic, "Basic base64(<any user>:<secret>)".
// The scheme is case-insensitive (RFC 9110 §11.1). ok is false when there
// is no usable secret.
func FromHeader(h string, basic bool) (secret string, ok bool) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	rest = strings.TrimSpace(rest)
	switch {
	case strings.EqualFold(scheme, "bearer"):
		secret = rest
	case basic && strings.EqualFold(scheme, "basic"):
		raw, err := base64.StdEncoding.DecodeString(rest)
		if err != nil {
			return "", false
		}
		_, secret, _ = strings.Cut(string(raw), ":")
	default:
		return "", false
	}
	return secret, secret != ""
}

// Authenticator checks secrets against the bootstrap admin token and the
// stored tokens. The zero value accepts nothing.
type Authenticator struct {
	bootstrap [32]byte // sha256 of the bootstrap secret
	hasBoot   bool
	store     meta.Tokens // nil: the bootstrap token only
	now       func() time.Time
	log       *slog.Logger
}

// touchEvery bounds the writes of last_used_at: at most one per token per
// interval.
const touchEvery = time.Minute

// NewAuthenticator returns an Authenticator. bootstrap ("" for none) is
// the admin token of the token file or --token; store may be nil; now nil
// is time.Now.
func NewAuthenticator(bootstrap string, store meta.Tokens, now func() time.Time, log *slog.Logger) *Authenticator {
	a := &Authenticator{store: store, now: now, log: log}
	if bootstrap != "" {
		a.bootstrap, a.hasBoot = sha256.Sum256([]byte(bootstrap)), true
	}
	if a.now == nil {
		a.now = time.Now
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	return a
}

// Authenticate returns the principal of secret: the bootstrap admin, or a
// stored token that is neither expired nor revoked (ErrInvalid). Other
// errors are the store's.
func (a *Authenticator) Authenticate(ctx context.Context, secret string) (*Principal, error) {
	sum := sha256.Sum256([]byte(secret))
	if a.hasBoot && subtle.ConstantTimeCompare(sum[:], a.bootstrap[:]) == 1 {
		return &Principal{ID: BootstrapID, Scopes: []Scope{{Kind: Admin}}}, nil
	}
	if a.store == nil || secret == "" {
		return nil, ErrInvalid
	}
	t, err := a.store.TokenByHash(ctx, hex.EncodeToString(sum[:]))
	if errors.Is(err, meta.ErrNotFound) {
		return nil, ErrInvalid
	}
	if err != nil {
		return nil, err
	}
	now := a.now()
	if t.RevokedAt != nil || (t.ExpiresAt != nil && !now.Before(*t.ExpiresAt)) {
		return nil, ErrInvalid
	}
	scopes, err := ParseScopes(t.Scopes)
	if err != nil { // stored by this package, so never; deny rather than guess
		return nil, fmt.Errorf("token %s: stored scopes: %w", t.ID, err)
	}
	if t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) >= touchEvery {
		if err := a.store.TouchToken(ctx, t.ID, now); err != nil {
			a.log.Warn("token: recording last use", "token", t.ID, "err", err)
		}
	}
	return &Principal{ID: t.ID, Scopes: scopes}, nil
}

type ctxKey struct{}

// With returns ctx carrying p.
func With(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// From returns the principal of ctx, or nil.
func From(ctx context.Context) *Principal {
	p, _ := ctx.Value(ctxKey{}).(*Principal)
	return p
}

// Actor names the principal of ctx in audit events: "token:<id>", or
// "anonymous" without one.
func Actor(ctx context.Context) string {
	if p := From(ctx); p != nil {
		return p.Actor()
	}
	return "anonymous"
}
