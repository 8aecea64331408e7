package api

import (
	"errors"
	"net/http"
	"strings"
	"time"
	"unicode"

	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/token"
)

// Tokens: create (the secret is in the answer once, never again), list,
// show and revoke; admin only (see routes).
//
//	POST   /v1/tokens       {name?, scopes, expires_at? (RFC 3339) | expires_in? ("720h")}  201 {…, secret}
//	GET    /v1/tokens       {tokens: […]} without secrets
//	GET    /v1/tokens/{id}
//	DELETE /v1/tokens/{id}  revokes; 200 with revoked_at

const (
	maxTokenName   = 200
	maxTokenScopes = 32
	maxTokenLife   = 10 * 365 * 24 * time.Hour
)

// createdToken is the answer of POST /v1/tokens: the record and its secret.
type createdToken struct {
	*meta.Token
	Secret string `json:"secret"`
}

func (a *API) createToken(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Name      string     `json:"name"`
		Scopes    []string   `json:"scopes"`
		ExpiresAt *time.Time `json:"expires_at"`
		ExpiresIn string     `json:"expires_in"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	if len(in.Name) > maxTokenName || strings.IndexFunc(in.Name, func(c rune) bool { return !unicode.IsPrint(c) }) >= 0 {
		return badRequest("name must be at most %d printable characters", maxTokenName)
	}
	if len(in.Scopes) > maxTokenScopes {
		return badRequest("a token takes at most %d scopes", maxTokenScopes)
	}
	scopes, err := token.ParseScopes(in.Scopes)
	if err != nil {
		return badRequest("%s", err)
	}
	exp, err := a.expiry(in.ExpiresAt, in.ExpiresIn)
	if err != nil {
		return err
	}
	secret := token.NewSecret()
	t := &meta.Token{Name: in.Name, Hash: token.Hash(secret), ExpiresAt: exp}
	for _, sc := range scopes {
		t.Scopes = append(t.Scopes, sc.String())
	}
	if err := a.cfg.Meta.CreateToken(r.Context(), t, actorOf(r)); err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/tokens/"+t.ID)
	w.Header().Set("Cache-Control", "no-store")
	return writeJSON(w, http.StatusCreated, createdToken{Token: t, Secret: secret})
}

// expiry is the expiry asked for: at, or now + in (a Go duration); both
// or neither: none.
func (a *API) expiry(at *time.Time, in string) (*time.Time, error) {
	now := a.now()
	switch {
	case at != nil && in != "":
		return nil, badRequest("give expires_at or expires_in, not both")
	case in != "":
		d, err := time.ParseDuration(in)
		if err != nil || d <= 0 || d > maxTokenLife {
			return nil, badRequest("expires_in %.40q must be a positive duration (e.g. 720h) of at most 10 years", in)
		}
		e := now.Add(d)
		return &e, nil
	case at != nil:
		if !at.After(now) || at.Sub(now) > maxTokenLife {
			return nil, badRequest("expires_at must be in the future, at most 10 years away")
		}
	}
	return at, nil
}

func (a *API) listTokens(w http.ResponseWriter, r *http.Request) error {
	ts, err := a.cfg.Meta.ListTokens(r.Context())
	if err != nil {
		return err
	}
	if ts == nil {
		ts = []meta.Token{}
	}
	return writeJSON(w, http.StatusOK, map[string]any{"tokens": ts})
}

func (a *API) getToken(w http.ResponseWriter, r *http.Request) error {
	t, err := a.cfg.Meta.GetToken(r.Context(), r.PathValue("id"))
	if err != nil {
		return tokenErr(r, err)
	}
	return writeJSON(w, http.StatusOK, t)
}

func (a *API) revokeToken(w http.ResponseWriter, r *http.Request) error {
	t, err := a.cfg.Meta.RevokeToken(r.Context(), r.PathValue("id"), actorOf(r))
	if err != nil {
		return tokenErr(r, err)
	}
	return writeJSON(w, http.StatusOK, t)
}

func tokenErr(r *http.Request, err error) error {
	id := r.PathValue("id")
	switch {
	case errors.Is(err, meta.ErrNotFound) && id == token.BootstrapID:
		return badRequest("the bootstrap admin token is not stored: rotate it by replacing the token file " +
			"(or --token) and restarting the server")
	case errors.Is(err, meta.ErrNotFound):
		return notFound("token %.80q not found", id)
	}
	return err
}
