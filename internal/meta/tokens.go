package meta

import (
	"context"
	"time"
)

// Event actions of the token store.
const (
	ActionTokenCreate = "token.create"
	ActionTokenRevoke = "token.revoke"
)

// Token is an API and registry access token. Its secret is never stored:
// Hash is the hex sha256 of the secret (see internal/token), and the
// record is found by it. Scopes are as internal/token parses them.
type Token struct {
	ID         string     `json:"id"` // "tok_…"
	Name       string     `json:"name"`
	Scopes     []string   `json:"scopes"`
	CreatedAt  time.Time  `json:"created_at"`
	CreatedBy  string     `json:"created_by"` // the actor that created it
	ExpiresAt  *time.Time `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	Hash       string     `json:"-"`
}

// Tokens stores tokens. Stores implement it optionally; callers
// type-assert. Every method is one transaction.
type Tokens interface {
	// CreateToken inserts t, filling ID ("tok_"+random, if empty),
	// CreatedAt and CreatedBy (actor), with a "token.create" event naming
	// its id and scopes (never its hash). Hash not 64 lowercase hex
	// digits, no scope, or a scope with a space: ErrInvalid. Taken id or
	// hash: ErrConflict.
	CreateToken(ctx context.Context, t *Token, actor string) error
	// GetToken returns token id; ErrNotFound.
	GetToken(ctx context.Context, id string) (*Token, error)
	// TokenByHash returns the token whose Hash is hash, revoked or expired
	// ones included (the caller decides); ErrNotFound.
	TokenByHash(ctx context.Context, hash string) (*Token, error)
	// ListTokens returns every token, oldest first (then by id).
	ListTokens(ctx context.Context) ([]Token, error)
	// RevokeToken sets RevokedAt of token id to now, with a "token.revoke"
	// event, and returns the token. A revoked token stays as it was (no
	// event). Unknown id: ErrNotFound.
	RevokeToken(ctx context.Context, id, actor string) (*Token, error)
	// TouchToken sets LastUsedAt of token id to at unless it is already
	// later; no event. Unknown id: ErrNotFound.
	TouchToken(ctx context.Context, id string, at time.Time) error
}
