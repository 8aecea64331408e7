package edge

import (
	"bytes"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/cairnhq/cairn/internal/httprange"
	"github.com/cairnhq/cairn/internal/problem"
	"github.com/cairnhq/cairn/internal/release"
)

// serve answers a request from the one release of rt.
func (e *Edge) serve(w http.ResponseWriter, r *http.Request, rt *route) {
	p := r.URL.Path
	if strings.IndexByte(p, 0) >= 0 {
		page(w, r, http.StatusBadRequest)
		return
	}
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	clean := path.Clean(p)
	if rt.site {
		e.serveSite(w, r, rt, p, clean)
		return
	}
	rel := clean[1:]
	root := rel == ""
	slash := !root && strings.HasSuffix(p, "/")
	if root {
		rel = rt.entrypoint
	}
	ent, at, ok := lookup(rt.toc, rel)
	switch {
	case !ok:
		e.notFound(w, r, rt)
		return
	case ent.Type == release.TypeDir && !slash && !root:
		redirect(w, r, rt, clean+"/", http.StatusMovedPermanently)
		return
	case ent.Type == release.TypeDir:
		if ent, _, ok = lookup(rt.toc, joinRel(at, "index.html")); !ok || ent.Type != release.TypeFile {
			e.notFound(w, r, rt)
			return
		}
	case slash: // a file asked for as a directory
		redirect(w, r, rt, clean, http.StatusMovedPermanently)
		return
	}
	e.serveFile(w, r, rt, ent)
}

// serveFile sends a file entry with status 200 (or 206, 304, 416 as the
// request's Range and preconditions ask). The coding is negotiated from
// Accept-Encoding (see negotiate): the stored zstd frames of a file with
// frames of its own, or a text file brotli-compressed or gzipped by the
// edge; a Range request always gets the content itself.
func (e *Edge) serveFile(w http.ResponseWriter, r *http.Request, rt *route, ent *release.Entry) {
	if len(r.Header["Range"]) > 0 { // a range is of the content itself
		r = httprange.Rewrite(r, ent.Size, httprange.MaxRanges)
	}
	h := w.Header()
	h["Cache-Control"] = rt.cache
	h["Accept-Ranges"] = acceptRanges
	_, _, passable := ent.RawSpan()
	gz := gzippable(ent)
	if (passable || gz) && h["Vary"] == nil { // set already: an SPA answer
		h["Vary"] = varyAE
	}
	noRange := len(r.Header["Range"]) == 0
	c := identity
	if ae := r.Header["Accept-Encoding"]; noRange && len(ae) > 0 {
		c = negotiate(ae, passable, gz && e.cacheable(ent, gzipped))
	}
	if !e.cacheable(ent, c) {
		e.serveStream(w, r, rt, ent, c == zstdFrames)
		return
	}
	var f *file
	var err error
	if c == gzipped || c == brotlied {
		f, err = e.gzipFile(r.Context(), rt, ent, c)
	} else {
		f, err = e.loadFile(r.Context(), rt, ent, c)
	}
	if err != nil {
		e.upstreamError(w, r, err)
		return
	}
	if f.encoding != nil {
		h["Content-Encoding"] = f.encoding
	}
	h["Etag"] = f.etag
	h["Content-Type"] = f.ctype
	if rt.site {
		rt.siteHeaders(r, h)
	}
	if noRange && len(r.Header["If-None-Match"]) == 0 && len(r.Header["If-Match"]) == 0 {
		// What ServeContent would do, without its per-request work.
		h["Content-Length"] = f.clen
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			w.Write(f.data)
		}
		return
	}
	if f.encoding != nil {
		h["Content-Length"] = f.clen // ServeContent leaves it to us with Content-Encoding
	}
	http.ServeContent(w, r, "", zeroTime, bytes.NewReader(f.data))
}

// serveStream sends a file too large for the hot cache through a stream.
// A storage failure before the first byte answers 502/504; after it the
// connection is aborted so the client sees a truncated response.
func (e *Edge) serveStream(w http.ResponseWriter, r *http.Request, rt *route, ent *release.Entry, raw bool) {
	s := newStream(r.Context(), rt.rr, ent, raw)
	defer s.Close()
	h := w.Header()
	c := identity
	if raw {
		c = zstdFrames
		h["Content-Encoding"] = zstdHdr
		h["Content-Length"] = []string{strconv.FormatInt(ent.FrameLength, 10)}
	}
	h["Etag"] = []string{etag(ent, c)}
	h["Content-Type"] = []string{contentType(ent)}
	rt.siteHeaders(r, h)
	if rng := r.Header.Get("Range"); strings.Contains(rng, ",") {
		// Multipart ranges read the stream from a goroutine that may outlive
		// ServeContent; serve the whole file instead (RFC 9110 allows it).
		r = r.Clone(r.Context())
		r.Header.Del("Range")
	}
	hw := &holdWriter{ResponseWriter: w}
	http.ServeContent(hw, r, "", zeroTime, s)
	switch {
	case s.err != nil && !hw.sent:
		e.upstreamError(w, r, s.err)
	case s.err != nil:
		problem.LogFailure(e.log, r, "edge: storage failure, aborting the response", s.err)
		panic(http.ErrAbortHandler)
	case !hw.sent:
		hw.flushHeader()
	}
}

// notFound serves the release's 404.html with status 404, or a plain 404.
func (e *Edge) notFound(w http.ResponseWriter, r *http.Request, rt *route) {
	ent, _, ok := lookup(rt.toc, "404.html")
	if !ok || ent.Type != release.TypeFile {
		rt.siteHeaders(r, w.Header())
		page(w, r, http.StatusNotFound)
		return
	}
	e.servePage(w, r, rt, ent, http.StatusNotFound)
}

// servePage serves a file whole with status code (no ranges, no
// preconditions): a not-found page. Too large for the cache: a plain page.
func (e *Edge) servePage(w http.ResponseWriter, r *http.Request, rt *route, ent *release.Entry, code int) {
	if !e.cacheable(ent, identity) {
		rt.siteHeaders(r, w.Header())
		page(w, r, code)
		return
	}
	f, err := e.loadFile(r.Context(), rt, ent, identity)
	if err != nil {
		e.upstreamError(w, r, err)
		return
	}
	h := w.Header()
	h["Cache-Control"] = cacheRevalid
	h["Content-Type"] = f.ctype
	h["Content-Length"] = f.clen
	rt.siteHeaders(r, h)
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		w.Write(f.data)
	}
}

// redirect answers code (301, 308) to the absolute path to, query string
// kept.
func redirect(w http.ResponseWriter, r *http.Request, rt *route, to string, code int) {
	loc := (&url.URL{Path: to}).EscapedPath()
	if r.URL.RawQuery != "" {
		loc += "?" + r.URL.RawQuery
	}
	h := w.Header()
	h.Set("Location", loc)
	h["Cache-Control"] = rt.cache
	rt.siteHeaders(r, h)
	w.WriteHeader(code)
}
