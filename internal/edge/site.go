package edge

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/cairnhq/cairn/internal/release"
	"github.com/cairnhq/cairn/internal/siterules"
)

// loadRules reads and compiles the _redirects and _headers of a release
// into te, once per release (with its TOC). Publishing refuses a file
// with a bad line; a release stored before that check gets its good lines,
// and the others are logged.
func (e *Edge) loadRules(ctx context.Context, sha string, te *tocEntry) error {
	var data [2][]byte
	for i, name := range [...]string{siterules.RedirectsFile, siterules.HeadersFile} {
		ent, ok := te.toc.Lookup(name)
		if !ok {
			continue
		}
		te.files = true
		if ent.Type != release.TypeFile || ent.Size > siterules.MaxFileBytes {
			e.log.Warn("edge: site rules file ignored", "release", sha, "file", name)
			continue
		}
		b, err := release.ReadFile(ctx, te.rr, ent)
		if err != nil {
			return fmt.Errorf("release %s, %q: %w", sha, name, err)
		}
		data[i] = b
	}
	var errs []error
	te.rules, errs = siterules.Parse(data[0], data[1])
	for _, err := range errs {
		e.log.Warn("edge: site rule line skipped", "release", sha, "error", err)
	}
	return nil
}

// serveSite answers a request for a site with rules or settings. In order:
//  1. the path as a file (a directory's index.html; with clean URLs, also
//     /about as about.html), with the edge's trailing-slash and clean-URL
//     redirects; a forced ("!") rule that matches comes first;
//  2. the first _redirects rule that matches;
//  3. with spa, the entrypoint for a request that accepts HTML;
//  4. the 404 page.
func (e *Edge) serveSite(w http.ResponseWriter, r *http.Request, rt *route, p, clean string) {
	rules := rt.rules
	ent, to, found := e.resolveFile(rt, p, clean)
	if found && rules.HasForced() {
		if m, ok := rules.Redirect(clean, r.URL.RawQuery, true); ok {
			e.applyRule(w, r, rt, m)
			return
		}
	}
	switch {
	case found && to != "":
		redirect(w, r, rt, to, redirectStatus(to, clean))
		return
	case found:
		e.serveFile(w, r, rt, ent)
		return
	}
	if m, ok := rules.Redirect(clean, r.URL.RawQuery, false); ok {
		e.applyRule(w, r, rt, m)
		return
	}
	if rt.spa {
		w.Header()["Vary"] = varyAcceptAE
		if accepts(r.Header["Accept"], "text/html", "") {
			if ent, ok := e.servable(rt, rt.entrypoint); ok {
				e.serveFile(w, r, rt, ent)
				return
			}
		}
	}
	e.notFound(w, r, rt)
}

// redirectStatus: 308 for a clean-URL redirect (away from .html), 301 for
// the trailing-slash ones.
func redirectStatus(to, from string) int {
	if strings.HasSuffix(from, ".html") {
		return http.StatusPermanentRedirect
	}
	return http.StatusMovedPermanently
}

// resolveFile finds what the path p (cleaned: clean) names: a file to
// serve, or the path to redirect to (to), or nothing (found false).
//
// Trailing slashes: a directory is served at its path with a slash (the
// path without it redirects, 301); a file at its path without one (a path
// with one redirects, 301). With clean URLs, a page's canonical path has
// no .html: /about serves about.html and /about.html redirects (308) to
// /about, /docs/index.html to /docs/, unless a file or directory /about
// exists, which keeps its URL.
func (e *Edge) resolveFile(rt *route, p, clean string) (ent *release.Entry, to string, found bool) {
	rel := clean[1:]
	if rel == siterules.RedirectsFile || rel == siterules.HeadersFile {
		return nil, "", false // rules, not content
	}
	root := rel == ""
	slash := !root && strings.HasSuffix(p, "/")
	if root {
		rel = rt.entrypoint
	}
	ent, at, ok := lookup(rt.toc, rel)
	switch {
	case !ok && rt.cleanURLs && !root:
		if ent, _, ok = lookup(rt.toc, rel+".html"); !ok || ent.Type != release.TypeFile {
			return nil, "", false
		}
		if slash {
			return ent, clean, true
		}
		return ent, "", true
	case !ok:
		return nil, "", false
	case ent.Type == release.TypeDir && !slash && !root:
		return ent, clean + "/", true
	case ent.Type == release.TypeDir:
		if ent, _, ok = lookup(rt.toc, joinRel(at, "index.html")); !ok || ent.Type != release.TypeFile {
			return nil, "", false
		}
		return ent, "", true
	case slash:
		return ent, clean, true
	case rt.cleanURLs && !root && strings.HasSuffix(rel, ".html"):
		if base, ok := strings.CutSuffix(rel, "index.html"); ok && (base == "" || strings.HasSuffix(base, "/")) {
			return ent, "/" + base, true // /docs/index.html → /docs/
		}
		if _, _, taken := lookup(rt.toc, strings.TrimSuffix(rel, ".html")); !taken {
			return ent, "/" + strings.TrimSuffix(rel, ".html"), true
		}
	}
	return ent, "", true
}

// servable finds the file a rule's target path (or the entrypoint) names:
// a file, a directory's index.html or, with clean URLs, a page.
func (e *Edge) servable(rt *route, rel string) (*release.Entry, bool) {
	rel = strings.TrimPrefix(rel, "/")
	ent, at, ok := lookup(rt.toc, rel)
	switch {
	case !ok && rt.cleanURLs && rel != "":
		ent, _, ok = lookup(rt.toc, rel+".html")
	case ok && ent.Type == release.TypeDir:
		ent, _, ok = lookup(rt.toc, joinRel(at, "index.html"))
	}
	if !ok || ent.Type != release.TypeFile || rel == siterules.RedirectsFile || rel == siterules.HeadersFile {
		return nil, false
	}
	return ent, true
}

// applyRule answers with a matched _redirects rule: a redirect, a rewrite
// (the target's content, 200; a missing target is a 404), a proxy (see
// serveProxy) or a custom not-found page (its content, 404).
func (e *Edge) applyRule(w http.ResponseWriter, r *http.Request, rt *route, m siterules.Match) {
	if m.Proxy {
		e.serveProxy(w, r, rt, m)
		return
	}
	switch m.Status {
	case http.StatusOK:
		if ent, ok := e.servable(rt, m.Path); ok {
			e.serveFile(w, r, rt, ent)
			return
		}
		e.notFound(w, r, rt)
	case http.StatusNotFound:
		if ent, ok := e.servable(rt, m.Path); ok {
			e.servePage(w, r, rt, ent, http.StatusNotFound)
			return
		}
		e.notFound(w, r, rt)
	default:
		h := w.Header()
		h["Location"] = []string{m.Location}
		h["Cache-Control"] = rt.cache
		rt.siteHeaders(r, h)
		w.WriteHeader(m.Status)
	}
}

// siteHeaders sets the _headers of the request's path on h, over the
// edge's defaults.
func (rt *route) siteHeaders(r *http.Request, h http.Header) {
	if rt.rules != nil {
		rt.rules.Headers(siterules.Clean(r.URL.Path), h)
	}
}

var varyAcceptAE = []string{"Accept, Accept-Encoding"}
