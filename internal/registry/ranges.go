package registry

import (
	"strconv"
	"strings"
)

// parseRange reads a Range header against a blob of size bytes. It returns
// the byte span to send and whether it is partial (206). An absent header,
// another unit, several ranges or an unparsable value mean the whole blob
// (RFC 9110 lets a server ignore them). A range starting at or after the end,
// a first byte after the last, or an empty suffix wraps errRangeInvalid (416).
func parseRange(h string, size int64) (off, n int64, partial bool, err error) {
	spec, ok := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return 0, size, false, nil
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return 0, size, false, nil
	}
	if first == "" { // suffix: the last n bytes
		k, ok := parseUint(last)
		if !ok {
			return 0, size, false, nil
		}
		if k == 0 || size == 0 {
			return 0, 0, false, public(errRangeInvalid, "range %q of a %d-byte blob", h, size)
		}
		k = min(k, size)
		return size - k, k, true, nil
	}
	a, ok := parseUint(first)
	if !ok {
		return 0, size, false, nil
	}
	b := size - 1
	if last != "" {
		if b, ok = parseUint(last); !ok {
			return 0, size, false, nil
		}
	}
	if a >= size || b < a {
		return 0, 0, false, public(errRangeInvalid, "range %q of a %d-byte blob", h, size)
	}
	b = min(b, size-1)
	return a, b - a + 1, true, nil
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
