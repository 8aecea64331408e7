package api

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/cairnhq/cairn/internal/meta"
)

// Sites makes the URLs at which the edge serves deployments and versions,
// from the edge's public URL (--public-url): scheme://BASE[:PORT] gives
// scheme://NAME.BASE[:PORT]/ and scheme://NAME--vN.BASE[:PORT]/.
type Sites struct {
	scheme, base, port string
}

// ParsePublicURL reads a public edge URL such as https://sites.example.com
// or http://localhost:7880: http or https, a host, no path, query or user.
func ParsePublicURL(s string) (*Sites, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("%q is not an http(s) URL of a base domain (e.g. https://sites.example.com)", s)
	}
	base := strings.ToLower(u.Hostname())
	if !isDomain(base) {
		return nil, fmt.Errorf("%q: %q is not a domain name that site names can go under", s, base)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%q: bad port", s)
		}
	}
	return &Sites{scheme: u.Scheme, base: base, port: u.Port()}, nil
}

// isDomain reports whether s is dot-separated labels of 1–63 letters,
// digits and inner hyphens (lower case).
func isDomain(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// String is the public URL: scheme://BASE[:PORT].
func (s *Sites) String() string {
	if s.port != "" {
		return s.scheme + "://" + s.base + ":" + s.port
	}
	return s.scheme + "://" + s.base
}

// site is the URL of host NAME or NAME--vN under the base.
func (s *Sites) site(label string) string {
	host := label + "." + s.base
	if s.port != "" {
		host += ":" + s.port
	}
	return s.scheme + "://" + host + "/"
}

// withURLs fills the URL of d (static deployments that are not deleted).
func (a *API) withURLs(d *meta.Deployment) *meta.Deployment {
	if a.cfg.Sites != nil && d != nil && d.Kind == meta.KindStatic && d.DeletedAt == nil {
		d.URL = a.cfg.Sites.site(d.Name)
	}
	return d
}

// present fills what a deployment record carries beyond the stored row:
// its URL and the number of its active version.
func (a *API) present(ctx context.Context, d *meta.Deployment) (*meta.Deployment, error) {
	a.withURLs(d)
	if err := a.presentSched(ctx, d); err != nil {
		return nil, err
	}
	if d.ActiveVersionID == nil {
		return d, nil
	}
	v, err := a.cfg.Meta.GetVersion(ctx, *d.ActiveVersionID)
	if err != nil {
		return nil, err
	}
	d.ActiveVersionNumber = v.VersionNumber
	return d, nil
}

// withVersionURLs fills the URLs of v, a version of d.
func (a *API) withVersionURLs(d *meta.Deployment, v *meta.Version) *meta.Version {
	if a.cfg.Sites == nil || d == nil || v == nil || d.Kind != meta.KindStatic {
		return v
	}
	v.PreviewURL = a.cfg.Sites.site(d.Name + "--v" + strconv.FormatInt(v.VersionNumber, 10))
	if v.Status == meta.StatusActive {
		v.URL = a.cfg.Sites.site(d.Name)
	}
	return v
}

// versionURLs fills the URLs of v, looking its deployment up.
func (a *API) versionURLs(ctx context.Context, v *meta.Version) (*meta.Version, error) {
	if a.cfg.Sites == nil {
		return v, nil
	}
	d, err := a.cfg.Meta.GetDeployment(ctx, v.DeploymentID)
	if err != nil {
		return nil, err
	}
	return a.withVersionURLs(d, v), nil
}
