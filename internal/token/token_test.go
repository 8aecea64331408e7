package token_test

import (
	"encoding/base64"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/fakeclock"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/meta/sqlite"
	"github.com/cairnhq/cairn/internal/token"
)

func TestParseScope(t *testing.T) {
	good := map[string]token.Scope{
		"admin":                           {Kind: "admin"},
		"read":                            {Kind: "read"},
		"agent":                           {Kind: "agent"},
		"deploy:web":                      {Kind: "deploy", Deployment: "web"},
		"push:a-1":                        {Kind: "push", Deployment: "a-1"},
		"pull:" + strings.Repeat("x", 63): {Kind: "pull", Deployment: strings.Repeat("x", 63)},
	}
	for in, want := range good {
		got, err := token.ParseScope(in)
		if err != nil || got != want || got.String() != in {
			t.Errorf("ParseScope(%q) = %+v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "Admin", "admin:web", "read:", "deploy", "deploy:", "deploy:Web",
		"deploy:-a", "deploy:a--b", "deploy:a/b", "push:" + strings.Repeat("x", 64), "write:web", "deploy:web:x"} {
		if _, err := token.ParseScope(in); err == nil {
			t.Errorf("ParseScope(%q) accepted", in)
		}
	}
	if _, err := token.ParseScopes(nil); err == nil {
		t.Error("ParseScopes(nil) accepted")
	}
	if _, err := token.ParseScopes([]string{"read", "read"}); err == nil {
		t.Error("ParseScopes with a duplicate accepted")
	}
}

// TestPrincipal is the scope table of docs/design.md ("Threat model:
// tokens and scopes") for deployments a and b.
func TestPrincipal(t *testing.T) {
	type perms struct{ admin, readsAll, readsAny, readsA, readsB, deploysA, deploysB, pullsA, pullsB, pushesA, pushesB bool }
	cases := map[string]perms{
		"admin":    {true, true, true, true, true, true, true, true, true, true, true},
		"read":     {false, true, true, true, true, false, false, true, true, false, false},
		"deploy:a": {false, false, true, true, false, true, false, true, false, false, false},
		"push:a":   {false, false, false, false, false, false, false, true, false, true, false},
		"pull:a":   {false, false, false, false, false, false, false, true, false, false, false},
		"agent":    {},
	}
	for scope, want := range cases {
		sc, err := token.ParseScope(scope)
		if err != nil {
			t.Fatal(err)
		}
		p := &token.Principal{ID: "tok_x", Scopes: []token.Scope{sc}}
		got := perms{p.Admin(), p.ReadsAll(), p.ReadsAny(), p.Reads("a"), p.Reads("b"), p.Deploys("a"), p.Deploys("b"),
			p.Pulls("a"), p.Pulls("b"), p.Pushes("a"), p.Pushes("b")}
		if got != want {
			t.Errorf("%s:\n got %+v\nwant %+v", scope, got, want)
		}
	}
	p := &token.Principal{ID: "tok_x", Scopes: []token.Scope{{Kind: "pull", Deployment: "a"}, {Kind: "deploy", Deployment: "b"}}}
	if !p.Pulls("a") || !p.Deploys("b") || p.Deploys("a") || p.Pushes("b") || p.Actor() != "token:tok_x" {
		t.Errorf("two scopes: %+v", p)
	}
}

func TestFromHeader(t *testing.T) {
	basic := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	cases := []struct {
		h      string
		basic  bool
		secret string
	}{
		{"Bearer s3cret", false, "s3cret"},
		{"bearer s3cret", false, "s3cret"},
		{"BEARER   s3cret  ", false, "s3cret"},
		{"Basic " + basic("x:s3cret"), true, "s3cret"},
		{"basic " + basic("any:s3:cret"), true, "s3:cret"},
		{"Basic " + basic("x:s3cret"), false, ""}, // the API takes Bearer only
		{"Basic " + basic("nopassword"), true, ""},
		{"Basic !!!", true, ""},
		{"Bearer", false, ""},
		{"Bearer ", false, ""},
		{"Token s3cret", true, ""},
		{"", true, ""},
		{"Bearers3cret", false, ""},
	}
	for _, c := range cases {
		got, ok := token.FromHeader(c.h, c.basic)
		if got != c.secret || ok != (c.secret != "") {
			t.Errorf("FromHeader(%q, %v) = %q, %v; want %q", c.h, c.basic, got, ok, c.secret)
		}
	}
}

func TestAuthenticate(t *testing.T) {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := t.Context()
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := fakeclock.New(t0)
	boot := token.NewSecret()
	if len(boot) < token.MinSecretLen || !strings.HasPrefix(boot, token.SecretPrefix) || boot == token.NewSecret() {
		t.Fatalf("NewSecret() = %q", boot)
	}
	a := token.NewAuthenticator(boot, st, clock.Now, nil)

	p, err := a.Authenticate(ctx, boot)
	if err != nil || !p.Admin() || p.Actor() != "token:admin" {
		t.Fatalf("bootstrap: %+v, %v", p, err)
	}
	mk := func(scope string, exp *time.Time) (string, *meta.Token) {
		secret := token.NewSecret()
		tok := &meta.Token{Scopes: []string{scope}, Hash: token.Hash(secret), ExpiresAt: exp}
		if err := st.CreateToken(ctx, tok, "token:admin"); err != nil {
			t.Fatal(err)
		}
		return secret, tok
	}
	exp := t0.Add(time.Hour)
	dep, depTok := mk("deploy:web", &exp)
	p, err = a.Authenticate(ctx, dep)
	if err != nil || p.ID != depTok.ID || !p.Deploys("web") || p.Deploys("api") {
		t.Fatalf("deploy token: %+v, %v", p, err)
	}
	got, _ := st.GetToken(ctx, depTok.ID)
	if got.LastUsedAt == nil || !got.LastUsedAt.Equal(t0) {
		t.Errorf("last_used_at = %v, want %v", got.LastUsedAt, t0)
	}
	clock.Add(time.Hour) // exactly at expiry: expired
	if _, err := a.Authenticate(ctx, dep); !errors.Is(err, token.ErrInvalid) {
		t.Errorf("expired token: %v", err)
	}
	rd, rdTok := mk("read", nil)
	if _, err := a.Authenticate(ctx, rd); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RevokeToken(ctx, rdTok.ID, "token:admin"); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{"revoked": rd, "unknown": token.NewSecret(), "empty": "",
		"bootstrap with a newline": boot + "\n"} {
		if _, err := a.Authenticate(ctx, s); !errors.Is(err, token.ErrInvalid) {
			t.Errorf("%s secret: %v, want ErrInvalid", name, err)
		}
	}
	if _, err := token.NewAuthenticator("", nil, nil, nil).Authenticate(ctx, ""); !errors.Is(err, token.ErrInvalid) {
		t.Errorf("zero authenticator accepted the empty secret: %v", err)
	}
}
