package edge

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cairnhq/cairn/internal/meta"
)

// TestHTTPSSettings: a domain with https_redirect sends plain HTTP to
// HTTPS (308, same path and query, the TLS port unless 443); hsts adds
// Strict-Transport-Security to its HTTPS responses only; a domain with
// neither, and a {name}.{base} host, are served as before.
func TestHTTPSSettings(t *testing.T) {
	for _, tc := range []struct {
		port, want string
	}{
		{"8443", "https://secure.example.com:8443/a/b.html?x=1&y=2"},
		{"443", "https://secure.example.com/a/b.html?x=1&y=2"},
	} {
		v := newEnv(t, Config{TLSPort: tc.port})
		ctx := t.Context()
		d := v.deploy("site")
		v.publish(d, map[string]string{"index.html": "home", "a/b.html": "b"}, true)
		for _, dom := range []meta.Domain{
			{Hostname: "secure.example.com", DeploymentID: d.ID, HTTPSRedirect: true, HSTS: true},
			{Hostname: "plain.example.com", DeploymentID: d.ID},
		} {
			if err := v.meta.CreateDomain(ctx, &dom, "t"); err != nil {
				t.Fatal(err)
			}
		}
		resp, _ := v.mustGet("secure.example.com", "/a/b.html?x=1&y=2", http.StatusPermanentRedirect)
		if loc := resp.Header.Get("Location"); loc != tc.want {
			t.Errorf("port %s: Location = %q, want %q", tc.port, loc, tc.want)
		}
		for _, host := range []string{"plain.example.com", "site.localhost"} {
			resp, body := v.mustGet(host, "/a/b.html", http.StatusOK)
			if string(body) != "b" || resp.Header.Get("Strict-Transport-Security") != "" {
				t.Errorf("%s: %q, HSTS %q", host, body, resp.Header.Get("Strict-Transport-Security"))
			}
		}
		for host, want := range map[string]string{"secure.example.com": "max-age=31536000", "plain.example.com": ""} {
			req := httptest.NewRequest("GET", "https://"+host+"/a/b.html", nil)
			req.TLS = &tls.ConnectionState{}
			rec := httptest.NewRecorder()
			v.edge.ServeHTTP(rec, req)
			if rec.Code != 200 || rec.Body.String() != "b" || rec.Header().Get("Strict-Transport-Security") != want {
				t.Errorf("TLS %s: %d %q, HSTS %q, want %q", host, rec.Code, rec.Body, rec.Header().Get("Strict-Transport-Security"), want)
			}
		}
	}
	// Without a TLS listener there is nowhere to redirect to.
	v := newEnv(t, Config{})
	d := v.deploy("site")
	v.publish(d, map[string]string{"index.html": "home"}, true)
	if err := v.meta.CreateDomain(t.Context(), &meta.Domain{Hostname: "secure.example.com", DeploymentID: d.ID, HTTPSRedirect: true}, "t"); err != nil {
		t.Fatal(err)
	}
	v.mustGet("secure.example.com", "/", http.StatusOK)
}
