package edge

import (
	"strconv"
	"strings"
)

// parseHost normalises a Host header value: the port and one trailing dot
// are removed and letters lower-cased. ok is false unless the rest is a DNS
// name: labels of 1–63 letters, digits and inner hyphens, at most 253 bytes
// in all. IP literals in brackets are not names and are refused. It
// allocates only when the value has upper-case letters.
func parseHost(h string) (host string, ok bool) {
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		if !allDigits(h[i+1:]) {
			return "", false
		}
		h = h[:i]
	}
	h = strings.TrimSuffix(h, ".")
	if len(h) == 0 || len(h) > 253 {
		return "", false
	}
	upper := false
	label := 0 // length of the current label
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case c == '.':
			if label == 0 || h[i-1] == '-' {
				return "", false
			}
			label = 0
			continue
		case c == '-':
			if label == 0 {
				return "", false
			}
		case 'A' <= c && c <= 'Z':
			upper = true
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		default:
			return "", false
		}
		if label++; label > 63 {
			return "", false
		}
	}
	if label == 0 || h[len(h)-1] == '-' {
		return "", false
	}
	if upper {
		h = strings.ToLower(h)
	}
	return h, true
}

// siteLabel splits a host under base: "{name}.{base}" gives (name, 0, true)
// and "{name}--v{N}.{base}" gives (name, N, true). N is canonical (no
// leading zero, at least 1). Any other host gives ok false: it may be a
// custom domain.
func siteLabel(host, base string) (name string, n int64, ok bool) {
	if base == "" || len(host) <= len(base)+1 || !strings.HasSuffix(host, base) ||
		host[len(host)-len(base)-1] != '.' {
		return "", 0, false
	}
	label := host[:len(host)-len(base)-1]
	if strings.IndexByte(label, '.') >= 0 {
		return "", 0, false
	}
	i := strings.LastIndex(label, "--v")
	if i <= 0 {
		return label, 0, true
	}
	digits := label[i+3:]
	if !allDigits(digits) || digits == "" || digits[0] == '0' || len(digits) > 18 {
		return label, 0, true
	}
	n, _ = strconv.ParseInt(digits, 10, 64)
	return label[:i], n, true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
