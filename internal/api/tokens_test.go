package api

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/internal/meta"
)

// callAs sends a request with "bearer <secret>" (a lower-case scheme).
func callAs(a *API, secret, method, path, body string) (int, map[string]any) {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if secret != "" {
		req.Header.Set("Authorization", "bearer "+secret)
	}
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, req)
	var out map[string]any
	json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out
}

func mintToken(t *testing.T, a *API, body string) (id, secret string) {
	t.Helper()
	code, out := callAs(a, testToken, "POST", "/v1/tokens", body)
	if code != 201 {
		t.Fatalf("POST /v1/tokens %s: %d %v", body, code, out)
	}
	return out["id"].(string), out["secret"].(string)
}

// TestTokenScopes: the routes of a deploy:a, read and pull:a token, the
// actor of their events, listing without secrets, revocation.
func TestTokenScopes(t *testing.T) {
	a := newAPI(t)
	for _, n := range []string{"a", "b"} {
		if code, out := callAs(a, testToken, "POST", "/v1/deployments", `{"name":"`+n+`"}`); code != 201 {
			t.Fatalf("create %s: %d %v", n, code, out)
		}
	}
	depID, dep := mintToken(t, a, `{"name":"ci a","scopes":["deploy:a"],"expires_in":"720h"}`)
	_, read := mintToken(t, a, `{"scopes":["read"]}`)
	_, pull := mintToken(t, a, `{"scopes":["pull:a"]}`)
	cases := []struct {
		secret, method, path, body string
		want                       int
	}{
		{dep, "GET", "/v1/deployments/a", "", 200},
		{dep, "GET", "/v1/deployments/b", "", 403},
		{dep, "GET", "/v1/deployments/nope", "", 403},
		{dep, "GET", "/v1/events?deployment=a", "", 200},
		{dep, "GET", "/v1/events", "", 403},
		{dep, "GET", "/v1/events?deployment=b", "", 403},
		{dep, "POST", "/v1/deployments/b/activate", `{"version_number":1}`, 403},
		{dep, "POST", "/v1/deployments/a/activate", `{"version_number":1}`, 404}, // allowed; no version 1
		{dep, "PATCH", "/v1/deployments/a", `{"retention_days":3}`, 403},
		{dep, "POST", "/v1/deployments", `{"name":"c"}`, 403},
		{dep, "GET", "/v1/tokens", "", 403},
		{dep, "GET", "/v1/releases/" + strings.Repeat("a", 64), "", 403},
		{read, "GET", "/v1/deployments/b", "", 200},
		{read, "GET", "/v1/events", "", 200},
		{read, "POST", "/v1/deployments/a/rollback", "", 403},
		{pull, "GET", "/v1/deployments/a", "", 403},
		{pull, "GET", "/v1/deployments", "", 403},
		{"cairn_" + strings.Repeat("0", 64), "GET", "/v1/deployments", "", 401},
	}
	for _, c := range cases {
		if code, out := callAs(a, c.secret, c.method, c.path, c.body); code != c.want {
			t.Errorf("%s %s as %.12s…: %d %v, want %d", c.method, c.path, c.secret, code, out, c.want)
		}
	}
	// a deploy token lists only its deployment
	if code, out := callAs(a, dep, "GET", "/v1/deployments", ""); code != 200 || len(out["deployments"].([]any)) != 1 {
		t.Errorf("list as deploy:a: %d %v", code, out)
	}
	// its events name it
	if code, out := callAs(a, dep, "POST", "/v1/deployments/a/rollback", ""); code != 409 {
		t.Fatalf("rollback as deploy:a: %d %v", code, out)
	}
	ev, err := a.cfg.Meta.ListEvents(t.Context(), meta.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if ev[0].Actor != "token:admin" || ev[0].Action != meta.ActionDeploymentCreate {
		t.Errorf("first event %+v, want deployment.create by token:admin", ev[0])
	}
	code, list := callAs(a, testToken, "GET", "/v1/tokens", "")
	if code != 200 || len(list["tokens"].([]any)) != 3 || strings.Contains(jsonText(list), "secret") ||
		strings.Contains(jsonText(list), dep) || strings.Contains(jsonText(list), "hash") {
		t.Fatalf("token list: %d %s", code, jsonText(list))
	}
	if code, out := callAs(a, testToken, "DELETE", "/v1/tokens/"+depID, ""); code != 200 || out["revoked_at"] == nil {
		t.Fatalf("revoke: %d %v", code, out)
	}
	if code, _ := callAs(a, dep, "GET", "/v1/deployments/a", ""); code != 401 {
		t.Errorf("revoked token: %d, want 401", code)
	}
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/v1/tokens", `{"scopes":[]}`},
		{"POST", "/v1/tokens", `{"scopes":["deploy:Bad"]}`},
		{"POST", "/v1/tokens", `{"scopes":["write"]}`},
		{"POST", "/v1/tokens", `{"scopes":["read"],"expires_in":"-1h"}`},
		{"POST", "/v1/tokens", `{"scopes":["read"],"expires_at":"2001-01-01T00:00:00Z"}`},
		{"POST", "/v1/tokens", `{"scopes":["read"],"expires_in":"1h","expires_at":"2091-01-01T00:00:00Z"}`},
		{"POST", "/v1/tokens", `{"scopes":["read"],"name":"a\nb"}`},
		{"DELETE", "/v1/tokens/admin", ""},
	} {
		if code, out := callAs(a, testToken, c.method, c.path, c.body); code != 400 {
			t.Errorf("%s %s %s: %d %v, want 400", c.method, c.path, c.body, code, out)
		}
	}
	if code, _ := callAs(a, testToken, "DELETE", "/v1/tokens/tok_none", ""); code != 404 {
		t.Errorf("revoke unknown: %d", code)
	}
}

// TestTokenActor: a publish by a deploy token is recorded as done by it.
func TestTokenActor(t *testing.T) {
	a := newAPI(t)
	callAs(a, testToken, "POST", "/v1/deployments", `{"name":"a"}`)
	id, dep := mintToken(t, a, `{"scopes":["deploy:a"]}`)
	if code, out := callAs(a, dep, "POST", "/v1/deployments/a/rollback", `{"version_number":1}`); code != 404 {
		t.Fatalf("rollback: %d %v", code, out)
	}
	code, out := callAs(a, dep, "POST", "/v1/domains", `{"hostname":"a.example.com","deployment":"a"}`)
	if code != 403 {
		t.Fatalf("domain add as deploy:a: %d %v", code, out)
	}
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "index.html", Mode: 0o644, Size: 2, Typeflag: tar.TypeReg})
	tw.Write([]byte("hi"))
	tw.Close()
	if code, out := callAs(a, dep, "POST", "/v1/deployments/a/versions", tb.String()); code != 201 {
		t.Fatalf("publish as deploy:a: %d %v", code, out)
	}
	callAs(a, testToken, "POST", "/v1/domains", `{"hostname":"a.example.com","deployment":"a"}`)
	if code, out := callAs(a, dep, "PATCH", "/v1/domains/a.example.com", `{"version_number":1}`); code != 200 {
		t.Fatalf("domain repoint as deploy:a: %d %v", code, out)
	}
	ev, err := a.cfg.Meta.ListEvents(t.Context(), meta.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ev[2:] { // after deployment.create and token.create
		got = append(got, e.Action+" "+e.Actor)
	}
	want := []string{"publish token:" + id, "activate token:" + id, "domain.add token:admin", "domain.repoint token:" + id}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("events %q, want %q", got, want)
	}
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
