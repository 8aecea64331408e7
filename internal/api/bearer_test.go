package api

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestBearerScheme: the scheme name of Authorization is case-insensitive
// (RFC 9110 §11.1); the secret is not.
func TestBearerScheme(t *testing.T) {
	a := newAPI(t)
	for h, want := range map[string]int{
		"Bearer " + token:                  201,
		"bearer " + token:                  201,
		"BEARER " + token:                  201,
		"bEaReR   " + token + " ":          201,
		"Bearer " + strings.ToUpper(token): 401,
		"Bearer":                           401,
		"Bearer ":                          401,
		"Basic " + token:                   401,
		"Bearertoken " + token:             401,
		token:                              401,
	} {
		req := httptest.NewRequest("POST", "/v1/deployments", strings.NewReader(`{"name":"d`+fmt.Sprint(len(h))+`"}`))
		req.Header.Set("Authorization", h)
		rec := httptest.NewRecorder()
		a.ServeHTTP(rec, req)
		if rec.Code != want && !(want == 201 && rec.Code == 409) {
			t.Errorf("Authorization %q: %d; want %d", h, rec.Code, want)
		}
	}
}

// FuzzBearerSecret: a secret is returned only for the Bearer scheme (any
// case), is never empty, and has no surrounding spaces.
func FuzzBearerSecret(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer abc", "BEARER  abc ", "Basic abc", "Bearer", "Bearer ", "", " Bearer x", "Bearerx y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		secret, ok := bearerSecret(h)
		if !ok {
			if secret != "" {
				t.Fatalf("%q: secret %q without ok", h, secret)
			}
			return
		}
		scheme, _, _ := strings.Cut(strings.TrimLeft(h, " \t"), " ")
		if !strings.EqualFold(scheme, "bearer") || secret == "" || strings.TrimSpace(secret) != secret || !strings.Contains(h, secret) {
			t.Fatalf("%q: secret %q", h, secret)
		}
	})
}
