// Package httprange parses the Range header of a request for bytes (RFC
// 9110 §14.2): the one parser of the edge, the API's artifact downloads
// and the registry's blobs. It decides what a range request gets:
// the whole representation (200), some ranges of it (206), or nothing
// (416); http.ServeContent, which the edge and the API use to answer, is
// handed ranges it can only read one way (Rewrite).
package httprange

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
)

// MaxRanges is the most ranges one request may ask for, like nginx's
// max_ranges: a request asking for more gets the whole representation, as
// if it had no Range header (RFC 9110 §14.2 lets a server ignore Range,
// and many small ranges are a known way to make a server work).
const MaxRanges = 16

// ErrUnsatisfiable: no range of the header fits the representation (416).
var ErrUnsatisfiable = errors.New("range not satisfiable")

// Span is a satisfiable range: Length > 0 bytes from Start, within the
// representation.
type Span struct{ Start, Length int64 }

// Parse reads a Range header value against a representation of size
// bytes, allowing at most max ranges. It returns:
//   - nil, nil: serve the whole representation. The header is absent, has
//     another unit, is malformed, or asks for more than max ranges; or the
//     representation is empty: there are no bytes to range over, and like
//     http.ServeContent (which ignores Range for an empty file, since
//     clients that always send one mean "at most this much") an empty
//     representation is served whole, as an empty 200.
//   - the satisfiable ranges in the order asked, clipped to size; ranges
//     that start at or after the end are left out.
//   - ErrUnsatisfiable: no range is satisfiable: every range starts at or
//     after the end, is a suffix of zero bytes ("bytes=-0"), or ends
//     before it starts ("bytes=5-2").
func Parse(h string, size int64, max int) ([]Span, error) {
	spec, ok := cutUnit(h)
	if !ok || size < 0 {
		return nil, nil
	}
	var spans []Span
	n := 0
	for part := range strings.SplitSeq(spec, ",") {
		part = strings.Trim(part, " \t")
		if part == "" { // empty list elements are allowed (RFC 9110 §5.6.1)
			continue
		}
		if n++; n > max {
			return nil, nil
		}
		first, last, ok := strings.Cut(part, "-")
		if !ok {
			return nil, nil
		}
		if first == "" { // suffix range: the last k bytes
			k, ok := parseUint(last)
			if !ok {
				return nil, nil
			}
			if k > 0 && size > 0 {
				k = min(k, size)
				spans = append(spans, Span{size - k, k})
			}
			continue
		}
		a, ok := parseUint(first)
		if !ok {
			return nil, nil
		}
		b := int64(-1) // open: to the end
		if last != "" {
			if b, ok = parseUint(last); !ok {
				return nil, nil
			}
			if b < a {
				continue // invalid: never satisfiable
			}
		}
		if a >= size {
			continue
		}
		if b < 0 || b >= size {
			b = size - 1
		}
		spans = append(spans, Span{a, b - a + 1})
	}
	switch {
	case n == 0:
		return nil, nil // "bytes=" or "bytes=,": malformed
	case len(spans) > 0:
		return spans, nil
	case size == 0:
		return nil, nil
	}
	return nil, ErrUnsatisfiable
}

// cutUnit returns the range-set of a "bytes=" header. The unit is
// case-insensitive.
func cutUnit(h string) (string, bool) {
	h = strings.Trim(h, " \t")
	unit, spec, ok := strings.Cut(h, "=")
	if !ok || !strings.EqualFold(strings.TrimRight(unit, " \t"), "bytes") {
		return "", false
	}
	return spec, true
}

// parseUint parses a non-negative decimal that fits an int64: digits only.
func parseUint(s string) (int64, bool) {
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil
}

// Rewrite prepares r for http.ServeContent of a representation of size
// bytes: it returns r itself when r has no Range, else a shallow copy
// whose Range is what Parse makes of it, spelled so that ServeContent
// reads it the same way: absolute first-last ranges, no Range at all for
// the whole representation, and "bytes=<size>-" (which ServeContent
// answers 416 with "Content-Range: bytes */<size>") for an unsatisfiable
// one. ServeContent still applies If-Range and the other preconditions.
func Rewrite(r *http.Request, size int64, max int) *http.Request {
	hs := r.Header["Range"]
	if len(hs) == 0 {
		return r
	}
	var spans []Span
	var err error
	if len(hs) == 1 {
		spans, err = Parse(hs[0], size, max)
	} // several Range fields: ignore them all
	r2 := *r
	r2.Header = r.Header.Clone()
	switch {
	case err != nil:
		r2.Header.Set("Range", "bytes="+strconv.FormatInt(size, 10)+"-")
	case spans == nil:
		r2.Header.Del("Range")
		r2.Header.Del("If-Range")
	default:
		b := []byte("bytes=")
		for i, s := range spans {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, s.Start, 10)
			b = append(b, '-')
			b = strconv.AppendInt(b, s.Start+s.Length-1, 10)
		}
		r2.Header.Set("Range", string(b))
	}
	return &r2
}
