package server

import "testing"

// TestDefaultPublicURL: without --public-url, records' URLs use the edge's
// scheme and port: https and the TLS port when the edge serves TLS (no
// port for 443), else http and the plain port (no port for 80); the bound
// addresses win over the flags; --public-url overrides all of it.
func TestDefaultPublicURL(t *testing.T) {
	for _, c := range []struct {
		edge, tls, boundEdge, boundTLS, public, want string
	}{
		{edge: ":7880", want: "http://localhost:7880"},
		{edge: ":80", want: "http://localhost"},
		{edge: "127.0.0.1:0", boundEdge: "127.0.0.1:41000", want: "http://localhost:41000"},
		{edge: ":80", tls: ":443", want: "https://localhost"},
		{edge: ":7880", tls: ":7443", want: "https://localhost:7443"},
		{edge: "127.0.0.1:0", tls: "127.0.0.1:0", boundEdge: "127.0.0.1:41000", boundTLS: "127.0.0.1:41001", want: "https://localhost:41001"},
		{edge: ":80", tls: ":443", public: "http://sites.example.com:8080", want: "http://sites.example.com:8080"},
	} {
		cfg := Default()
		cfg.BaseDomain = "localhost"
		cfg.EdgeAddr, cfg.EdgeTLSAddr, cfg.PublicURL = c.edge, c.tls, c.public
		s := cfg.sites(c.boundEdge, c.boundTLS)
		if s == nil {
			t.Fatalf("%+v: no sites", c)
		}
		if got := s.String(); got != c.want {
			t.Errorf("%+v: public URL %q, want %q", c, got, c.want)
		}
	}
}
