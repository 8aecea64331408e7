package registry

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxTagPage bounds n in a listing of tags or repositories.
const maxTagPage = 10000

// listTags answers GET /v2/<name>/tags/list[?n=<n>&last=<tag>]: the tags in
// lexical order, after last, at most n. When more follow, a Link header
// names the next page (rel="next"). Unknown repository: NAME_UNKNOWN.
func (r *Registry) listTags(w http.ResponseWriter, req *http.Request, rt route) error {
	ctx := req.Context()
	n, err := pageSize(req)
	if err != nil {
		return err
	}
	if err := r.pullRepository(ctx, rt.name); err != nil {
		return err
	}
	tags, err := page(w, req, "/v2/"+rt.name+"/tags/list", n, func(last string, n int) ([]string, error) {
		return r.reg.ListOCITags(ctx, rt.name, last, n)
	})
	if err != nil {
		return err
	}
	return writeJSON(w, map[string]any{"name": rt.name, "tags": tags}, "application/json")
}

// catalog answers GET /v2/_catalog[?n=<n>&last=<name>]: the repository
// names in lexical order, after last, at most n, paged like tags. Only the
// token holder may list them (authorize).
func (r *Registry) catalog(w http.ResponseWriter, req *http.Request, _ route) error {
	ctx := req.Context()
	n, err := pageSize(req)
	if err != nil {
		return err
	}
	repos, err := page(w, req, "/v2/_catalog", n, func(last string, n int) ([]string, error) {
		return r.reg.ListOCIRepositories(ctx, last, n)
	})
	if err != nil {
		return err
	}
	return writeJSON(w, map[string]any{"repositories": repos}, "application/json")
}

// pageSize reads n of a listing: -1 when absent (everything), else at most
// maxTagPage.
func pageSize(req *http.Request) (int, error) {
	s := req.URL.Query().Get("n")
	if s == "" {
		return -1, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 0 {
		return 0, public(errUnsupported, "n=%.20q must be a non-negative integer", s)
	}
	return min(v, maxTagPage), nil
}

// page lists the names after the request's last, at most n of them (n < 0:
// all), through list, and sets a Link header naming the next page under
// path when more follow. A last that no name can be (not UTF-8, or with a
// NUL, which PostgreSQL refuses as text) is refused like a bad n.
func page(w http.ResponseWriter, req *http.Request, path string, n int, list func(last string, n int) ([]string, error)) ([]string, error) {
	last := req.URL.Query().Get("last")
	if !utf8.ValidString(last) || strings.IndexByte(last, 0) >= 0 {
		return nil, public(errUnsupported, "last=%.100q is not a name", last)
	}
	if n == 0 {
		return []string{}, nil
	}
	names, err := list(last, n+1)
	if err != nil {
		return nil, err
	}
	if n > 0 && len(names) > n {
		names = names[:n]
		next := url.Values{"last": {names[n-1]}, "n": {strconv.Itoa(n)}}
		w.Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, path, next.Encode()))
	}
	return names, nil
}

// writeJSON answers 200 with v.
func writeJSON(w http.ResponseWriter, v any, contentType string) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	w.Write(b) // the status is sent: a write error is the client's to see
	return nil
}
