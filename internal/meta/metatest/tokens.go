package metatest

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

// tokenTests check meta.Tokens.
var tokenTests = []test{
	{"Tokens/Lifecycle", testTokenLifecycle},
	{"Tokens/Invalid", testTokenInvalid},
	{"Tokens/Touch", testTokenTouch},
	{"Tokens/ConcurrentRevoke", testTokenConcurrentRevoke},
}

func newToken(t *testing.T, ts meta.Tokens, secret string, scopes ...string) *meta.Token {
	t.Helper()
	tok := &meta.Token{Name: "ci " + secret, Scopes: scopes, Hash: sha(secret)}
	if err := ts.CreateToken(t.Context(), tok, "token:admin"); err != nil {
		t.Fatalf("CreateToken(%s): %v", secret, err)
	}
	return tok
}

func testTokenLifecycle(t *testing.T, s meta.Store) {
	ts, ctx := capability[meta.Tokens](t, s), t.Context()
	exp := time.Date(2031, 2, 3, 4, 5, 6, 7, time.FixedZone("x", 3600))
	a := &meta.Token{Name: "deploy web", Scopes: []string{"deploy:web", "pull:web"}, Hash: sha("a"), ExpiresAt: &exp}
	if err := ts.CreateToken(ctx, a, "token:admin"); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(a.ID, "tok_") || a.CreatedBy != "token:admin" || a.RevokedAt != nil || a.LastUsedAt != nil {
		t.Fatalf("created token = %+v", a)
	}
	wantUTC(t, "created_at", a.CreatedAt)
	wantUTC(t, "expires_at", *a.ExpiresAt)
	b := newToken(t, ts, "b", "read")

	got, err := ts.GetToken(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "GetToken", got, a)
	if got.Hash != sha("a") {
		t.Errorf("GetToken hash = %q", got.Hash)
	}
	got, err = ts.TokenByHash(ctx, sha("b"))
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "TokenByHash", got, b)
	_, err = ts.TokenByHash(ctx, sha("nobody"))
	wantErr(t, "TokenByHash of an unknown hash", err, meta.ErrNotFound)
	_, err = ts.GetToken(ctx, "tok_none")
	wantErr(t, "GetToken of an unknown id", err, meta.ErrNotFound)
	wantErr(t, "CreateToken of a taken hash", ts.CreateToken(ctx, &meta.Token{Scopes: []string{"read"}, Hash: sha("a")}, "x"), meta.ErrConflict)
	wantErr(t, "CreateToken of a taken id", ts.CreateToken(ctx, &meta.Token{ID: a.ID, Scopes: []string{"read"}, Hash: sha("c")}, "x"), meta.ErrConflict)

	list, err := ts.ListTokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Oldest first; tokens created in the same instant (a frozen clock)
	// by id.
	wantList := []meta.Token{*a, *b}
	if a.CreatedAt.Equal(b.CreatedAt) && b.ID < a.ID {
		wantList = []meta.Token{*b, *a}
	}
	sameJSON(t, "ListTokens", list, wantList)

	r, err := ts.RevokeToken(ctx, a.ID, "token:tok_other")
	if err != nil {
		t.Fatal(err)
	}
	if r.RevokedAt == nil {
		t.Fatal("RevokeToken left revoked_at unset")
	}
	wantUTC(t, "revoked_at", *r.RevokedAt)
	again, err := ts.RevokeToken(ctx, a.ID, "token:tok_other")
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "RevokeToken twice", again, r)
	got, err = ts.TokenByHash(ctx, sha("a"))
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "revoked token by hash", got, r)
	_, err = ts.RevokeToken(ctx, "tok_none", "x")
	wantErr(t, "RevokeToken of an unknown id", err, meta.ErrNotFound)

	// the audit log has one create per token and one revoke, by the actor,
	// naming the token id and never its hash
	evs, err := s.ListEvents(ctx, meta.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range evs {
		actions = append(actions, e.Action+" "+e.Actor)
		if strings.Contains(string(e.Detail), sha("a")) || strings.Contains(string(e.Detail), sha("b")) {
			t.Errorf("event %d detail %s holds a token hash", e.ID, e.Detail)
		}
	}
	want := []string{"token.create token:admin", "token.create token:admin", "token.revoke token:tok_other"}
	if strings.Join(actions, ",") != strings.Join(want, ",") {
		t.Fatalf("events = %q, want %q", actions, want)
	}
	var d struct {
		TokenID string   `json:"token_id"`
		Scopes  []string `json:"scopes"`
	}
	if err := json.Unmarshal(evs[0].Detail, &d); err != nil || d.TokenID != a.ID || len(d.Scopes) != 2 {
		t.Errorf("token.create detail = %s (%v)", evs[0].Detail, err)
	}
}

func testTokenInvalid(t *testing.T, s meta.Store) {
	ts, ctx := capability[meta.Tokens](t, s), t.Context()
	for name, tok := range map[string]meta.Token{
		"short hash":    {Scopes: []string{"read"}, Hash: "abc"},
		"upper hash":    {Scopes: []string{"read"}, Hash: strings.ToUpper(sha("x"))},
		"no scope":      {Hash: sha("x")},
		"empty scope":   {Scopes: []string{""}, Hash: sha("x")},
		"spaced scope":  {Scopes: []string{"read admin"}, Hash: sha("x")},
		"newline scope": {Scopes: []string{"read\n"}, Hash: sha("x")},
	} {
		wantErr(t, "CreateToken with a "+name, ts.CreateToken(ctx, &tok, "x"), meta.ErrInvalid)
	}
	if list, err := ts.ListTokens(ctx); err != nil || len(list) != 0 {
		t.Fatalf("after invalid creates: %v, %v", list, err)
	}
}

func testTokenTouch(t *testing.T, s meta.Store) {
	ts, ctx := capability[meta.Tokens](t, s), t.Context()
	a := newToken(t, ts, "a", "admin")
	t1 := time.Date(2030, 1, 1, 0, 0, 1, 0, time.UTC)
	t2 := t1.Add(time.Minute)
	for _, at := range []time.Time{t1, t2, t1} { // never backwards
		if err := ts.TouchToken(ctx, a.ID, at); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ts.GetToken(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.LastUsedAt == nil || !got.LastUsedAt.Equal(t2) {
		t.Errorf("last_used_at = %v, want %v", got.LastUsedAt, t2)
	}
	wantErr(t, "TouchToken of an unknown id", ts.TouchToken(ctx, "tok_none", t1), meta.ErrNotFound)
	evs, err := s.ListEvents(ctx, meta.EventFilter{})
	if err != nil || len(evs) != 1 {
		t.Errorf("events after touches: %d, %v (want the create only)", len(evs), err)
	}
}

// testTokenConcurrentRevoke revokes one token from many goroutines: one
// revoke event, every caller sees the same revoked_at.
func testTokenConcurrentRevoke(t *testing.T, s meta.Store) {
	ts, ctx := capability[meta.Tokens](t, s), t.Context()
	a := newToken(t, ts, "a", "read")
	const n = 8
	got := make([]*meta.Token, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = ts.RevokeToken(ctx, a.ID, "x")
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("RevokeToken %d: %v", i, errs[i])
		}
		sameJSON(t, "concurrent revoke", got[i].RevokedAt, got[0].RevokedAt)
	}
	evs, err := s.ListEvents(ctx, meta.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	revokes := 0
	for _, e := range evs {
		if e.Action == meta.ActionTokenRevoke {
			revokes++
		}
	}
	if revokes != 1 {
		t.Errorf("%d revoke events, want 1", revokes)
	}
}
