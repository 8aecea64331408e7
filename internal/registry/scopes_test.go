package registry_test

import (
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/token"
)

// mint stores a token with scopes in e's metadata store and returns its
// id and secret.
func (e *env) mint(t *testing.T, scopes ...string) (id, secret string) {
	t.Helper()
	secret = token.NewSecret()
	tok := &meta.Token{Scopes: scopes, Hash: token.Hash(secret)}
	if err := e.meta.(meta.Tokens).CreateToken(t.Context(), tok, "token:admin"); err != nil {
		t.Fatal(err)
	}
	return tok.ID, secret
}

// TestScopes: push:X pushes and pulls X only, pull:X pulls X only,
// deploy:X pulls X, read pulls everything and lists the catalog; none of
// them but push:X and admin pushes. A push names its token in the events.
func TestScopes(t *testing.T) {
	e := newEnv(t, nil)
	pushID, push := e.mint(t, "push:app")
	_, pull := e.mint(t, "pull:app")
	_, pullOther := e.mint(t, "pull:other")
	_, deploy := e.mint(t, "deploy:app")
	_, read := e.mint(t, "read")
	_, agent := e.mint(t, "agent")

	cfg := []byte(`{}`)
	d := e.pushBlobAs(t, "app", cfg, "bearer "+push) // lower-case scheme
	man := imageManifest(d, len(cfg))
	resp, body := e.do(t, "PUT", "/v2/app/manifests/v1", man, "Content-Type", ociManifest, "Authorization", "bEaReR "+push)
	wantCode(t, "push as push:app", resp, body, 201, "")

	manifest := "/v2/app/manifests/v1"
	for _, c := range []struct {
		name, secret, method, path string
		status                     int
		code                       string
	}{
		{"push:app pulls", push, "GET", manifest, 200, ""},
		{"pull:app pulls", pull, "GET", manifest, 200, ""},
		{"pull:app pulls a blob", pull, "GET", "/v2/app/blobs/" + d.String(), 200, ""},
		{"pull:app pings", pull, "GET", "/v2/", 200, ""},
		{"deploy:app pulls", deploy, "GET", manifest, 200, ""},
		{"read pulls", read, "GET", manifest, 200, ""},
		{"read lists", read, "GET", "/v2/_catalog", 200, ""},
		{"pull:other", pullOther, "GET", manifest, 403, "DENIED"},
		{"agent", agent, "GET", manifest, 403, "DENIED"},
		{"pull:app lists", pull, "GET", "/v2/_catalog", 403, "DENIED"},
		{"pull:app pushes", pull, "POST", "/v2/app/blobs/uploads/", 403, "DENIED"},
		{"deploy:app pushes", deploy, "POST", "/v2/app/blobs/uploads/", 403, "DENIED"},
		{"read deletes", read, "DELETE", manifest, 403, "DENIED"},
		{"push:app pushes to other", push, "POST", "/v2/other/blobs/uploads/", 403, "DENIED"},
	} {
		resp, body := e.do(t, c.method, c.path, nil, "Authorization", basic("ci", c.secret))
		wantCode(t, c.name, resp, body, c.status, c.code)
	}
	if _, err := e.meta.(meta.Tokens).RevokeToken(t.Context(), pushID, "token:admin"); err != nil {
		t.Fatal(err)
	}
	resp, body = e.do(t, "GET", manifest, nil, "Authorization", basic("ci", push))
	wantCode(t, "revoked push:app", resp, body, 401, "UNAUTHORIZED")

	evs, err := e.meta.ListEvents(t.Context(), meta.EventFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	acted := map[string]string{}
	for _, ev := range evs {
		acted[ev.Action] = ev.Actor
	}
	if acted[meta.ActionDeploymentCreate] != "token:"+pushID {
		t.Errorf("the push created its deployment as %q, want token:%s", acted[meta.ActionDeploymentCreate], pushID)
	}
}

// pushBlobAs pushes b to repo in one request with the Authorization auth.
func (e *env) pushBlobAs(t *testing.T, repo string, b []byte, auth string) digest.Digest {
	t.Helper()
	d := digest.FromBytes(b)
	resp, body := e.do(t, "POST", "/v2/"+repo+"/blobs/uploads/?digest="+d.String(), b, "Authorization", auth)
	wantCode(t, "pushing a blob", resp, body, 201, "")
	return d
}
