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
		"Bearer " + testToken:                  201,
		"bearer " + testToken:                  201,
		"BEARER " + testToken:                  201,
		"bEaReR   " + testToken + " ":          201,
		"Bearer " + strings.ToUpper(testToken): 401,
		"Bearer":                               401,
		"Bearer ":                              401,
		"Basic " + testToken:                   401,
		"Bearertoken " + testToken:             401,
		testToken:                              401,
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
