package registry

import (
	"strconv"
	"strings"

	"github.com/cairnhq/cairn/internal/httprange"
)

// parseRange reads a Range header against a blob of size bytes
// (httprange.Parse). It returns the byte span to send and whether it is
// partial (206). An absent header, another unit, a malformed value, more
// than httprange.MaxRanges ranges, or several satisfiable ranges mean the
// whole blob (RFC 9110 lets a server ignore them; the registry sends no
// multipart answers). A header no range of which fits ("bytes=-0", a start
// at or past the end, a last byte before the first) wraps errRangeInvalid
// (416).
func parseRange(h string, size int64) (off, n int64, partial bool, err error) {
	spans, err := httprange.Parse(h, size, httprange.MaxRanges)
	switch {
	case err != nil:
		return 0, 0, false, public(errRangeInvalid, "range %.100q of a %d-byte blob", h, size)
	case len(spans) != 1:
		return 0, size, false, nil
	}
	return spans[0].Start, spans[0].Length, true, nil
}

// parseContentRange reads the Content-Range of an upload chunk:
// "<start>-<end>" with an inclusive end, also accepted with a "bytes " or
// "bytes=" prefix and a "/<total>" suffix. A malformed value wraps
// errUploadInvalid; end < start wraps errRangeInvalid.
func parseContentRange(h string) (start, end int64, err error) {
	s := strings.TrimSpace(h)
	for _, p := range []string{"bytes=", "bytes "} {
		s = strings.TrimPrefix(s, p)
	}
	s, _, _ = strings.Cut(s, "/")
	a, b, ok := strings.Cut(s, "-")
	start, ok1 := parseUint(a)
	end, ok2 := parseUint(b)
	if !ok || !ok1 || !ok2 {
		return 0, 0, public(errUploadInvalid, "malformed Content-Range %.100q, want <start>-<end>", h)
	}
	if end < start {
		return 0, 0, public(errRangeInvalid, "Content-Range %.100q ends before it starts", h)
	}
	return start, end, nil
}

// parseUint parses a non-negative decimal that fits an int64.
func parseUint(s string) (int64, bool) {
	if s == "" || s[0] == '+' || s[0] == '-' {
		return 0, false
	}
	v, err := strconv.ParseInt(s, 10, 64)
	return v, err == nil
}
