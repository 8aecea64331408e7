package registry

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
)

// maxTagPage bounds n in a tag listing.
const maxTagPage = 10000

// listTags answers GET /v2/<name>/tags/list[?n=<n>&last=<tag>]: the tags in
// lexical order, after last, at most n. When more follow, a Link header
// names the next page (rel="next"). Unknown repository: NAME_UNKNOWN.
func (r *Registry) listTags(w http.ResponseWriter, req *http.Request, rt route) error {
	ctx := req.Context()
	q := req.URL.Query()
	n := -1
	if s := q.Get("n"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			return public(errUnsupported, "n=%.20q must be a non-negative integer", s)
		}
		n = min(v, maxTagPage)
	}
	if err := r.pullRepository(ctx, rt.name); err != nil {
		return err
	}
	tags := []string{}
	if n != 0 {
		var err error
		if tags, err = r.reg.ListOCITags(ctx, rt.name, q.Get("last"), n+1); err != nil {
			return err
		}
	}
	if n > 0 && len(tags) > n {
		tags = tags[:n]
		next := url.Values{"last": {tags[n-1]}, "n": {strconv.Itoa(n)}}
		w.Header().Set("Link", fmt.Sprintf(`</v2/%s/tags/list?%s>; rel="next"`, rt.name, next.Encode()))
	}
	return writeJSON(w, map[string]any{"name": rt.name, "tags": tags}, "application/json")
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
