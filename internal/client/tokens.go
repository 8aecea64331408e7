package client

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

// TokenRequest is what POST /v1/tokens takes: scopes, and optionally a
// name and an expiry, absolute (ExpiresAt) or from the server's now
// (ExpiresIn, a Go duration such as "720h").
type TokenRequest struct {
	Name      string     `json:"name,omitempty"`
	Scopes    []string   `json:"scopes"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	ExpiresIn string     `json:"expires_in,omitempty"`
}

// CreatedToken is a new token with its secret, which the server sends this
// once and never again.
type CreatedToken struct {
	meta.Token
	Secret string `json:"secret"`
}

// CreateToken creates a token (admin only).
func (c *Client) CreateToken(ctx context.Context, in TokenRequest) (*CreatedToken, error) {
	var t CreatedToken
	if err := c.call(ctx, http.MethodPost, "/v1/tokens", in, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// ListTokens returns every token, oldest first, without secrets (admin only).
func (c *Client) ListTokens(ctx context.Context) ([]meta.Token, error) {
	var out struct {
		Tokens []meta.Token `json:"tokens"`
	}
	if err := c.call(ctx, http.MethodGet, "/v1/tokens", nil, &out); err != nil {
		return nil, err
	}
	return out.Tokens, nil
}

// RevokeToken revokes token id and returns it (admin only). Revoking a
// revoked token changes nothing.
func (c *Client) RevokeToken(ctx context.Context, id string) (*meta.Token, error) {
	var t meta.Token
	if err := c.call(ctx, http.MethodDelete, "/v1/tokens/"+url.PathEscape(id), nil, &t); err != nil {
		return nil, err
	}
	return &t, nil
}
