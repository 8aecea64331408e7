package edge

import (
	"fmt"
	"github.com/cairnhq/cairn/internal/problem"
	"net/http"
	"strconv"
	"time"
)

var zeroTime time.Time

// upstreamError answers a metadata or storage failure that happened before
// any header was sent (see problem.Upstream). Headers of the file response
// are dropped.
func (e *Edge) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	h := w.Header()
	for _, k := range []string{"Etag", "Content-Encoding", "Content-Range", "Accept-Ranges", "Vary", "Content-Length"} {
		delete(h, k)
	}
	h["Cache-Control"] = cacheNoStore
	problem.Write(w, r, e.log, problem.Upstream(err))
}

// pages are the edge's own small answers.
var pages = map[int][]byte{}

func init() {
	for code, text := range map[int]string{
		http.StatusBadRequest:       "The request path is not valid.",
		http.StatusNotFound:         "There is nothing here.",
		http.StatusMethodNotAllowed: "Only GET and HEAD are served here.",
		http.StatusGone:             "This version was removed; its files are no longer stored.",
	} {
		title := fmt.Sprintf("%d %s", code, http.StatusText(code))
		pages[code] = fmt.Appendf(nil, "<!doctype html>\n<meta charset=utf-8>\n<title>%s</title>\n<h1>%s</h1>\n<p>%s</p>\n",
			title, title, text)
	}
}

// page writes one of the edge's error pages (not cached by clients).
func page(w http.ResponseWriter, r *http.Request, code int) {
	body := pages[code]
	h := w.Header()
	h["Cache-Control"] = cacheNoStore
	h["Content-Type"] = []string{"text/html; charset=utf-8"}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

// holdWriter holds the status line back until the first body byte, so
// that a stream failing on its first read can still be answered with a
// 502 instead of a truncated body.
type holdWriter struct {
	http.ResponseWriter
	code int
	sent bool
}

func (h *holdWriter) WriteHeader(code int) {
	if h.code == 0 {
		h.code = code
	}
}

func (h *holdWriter) Write(p []byte) (int, error) {
	if !h.sent {
		h.flushHeader()
	}
	return h.ResponseWriter.Write(p)
}

// flushHeader sends the held status (200 if none).
func (h *holdWriter) flushHeader() {
	h.sent = true
	if h.code == 0 {
		h.code = http.StatusOK
	}
	h.ResponseWriter.WriteHeader(h.code)
}

// Unwrap lets http.ResponseController reach the connection.
func (h *holdWriter) Unwrap() http.ResponseWriter { return h.ResponseWriter }
