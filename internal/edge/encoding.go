package edge

import "strings"

// acceptsZstd reports whether Accept-Encoding values list the zstd coding
// with a non-zero quality. Only an explicit "zstd" counts: "*" is not taken
// as consent, since a client that names no zstd most likely cannot decode
// it. A malformed q value counts as q=0. It does not allocate.
func acceptsZstd(values []string) bool { return accepts(values, "zstd", "") }

// acceptsGzip is acceptsZstd for gzip (or its alias x-gzip).
func acceptsGzip(values []string) bool { return accepts(values, "gzip", "x-gzip") }

// accepts reports whether the first of the codings named (name, or alias
// unless empty) that values list has a non-zero quality.
func accepts(values []string, name, alias string) bool {
	for _, v := range values {
		for v != "" {
			var elem string
			elem, v, _ = strings.Cut(v, ",")
			coding, params, _ := strings.Cut(elem, ";")
			coding = strings.TrimSpace(coding)
			if strings.EqualFold(coding, name) || alias != "" && strings.EqualFold(coding, alias) {
				return qNonZero(params)
			}
		}
	}
	return false
}

// qNonZero reads the weight among ";"-separated parameters (default 1).
func qNonZero(params string) bool {
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		k, val, ok := strings.Cut(p, "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		return qPositive(strings.TrimSpace(val))
	}
	return true
}

// qPositive parses an RFC 9110 qvalue ("0" ["." 0-3 digits] or "1" ["."
// 0-3 zeros]) and reports whether it is valid and above zero.
func qPositive(q string) bool {
	if q == "" || len(q) > 5 || (q[0] != '0' && q[0] != '1') {
		return false
	}
	frac := q[1:]
	if frac != "" {
		if frac[0] != '.' {
			return false
		}
		frac = frac[1:]
	}
	nonzero := false
	for i := 0; i < len(frac); i++ {
		c := frac[i]
		if c < '0' || c > '9' || (q[0] == '1' && c != '0') {
			return false
		}
		nonzero = nonzero || c != '0'
	}
	return q[0] == '1' || nonzero
}

// negotiate picks the coding of a response from Accept-Encoding values:
// among zstd (if frames, the file has stored frames of its own) and br and
// gzip (if text, the edge compresses the file), the one with the highest
// quality above zero; equal qualities prefer zstd, then br, then gzip. An
// explicitly listed identity with a higher quality than all of them wins.
// "*" is not taken as consent (see acceptsZstd). It does not allocate.
func negotiate(values []string, frames, text bool) coding {
	qz, qb, qg, qi := -1, -1, -1, -1 // -1: not listed
	for _, v := range values {
		for v != "" {
			var elem string
			elem, v, _ = strings.Cut(v, ",")
			name, params, _ := strings.Cut(elem, ";")
			var q *int
			switch name = strings.TrimSpace(name); {
			case strings.EqualFold(name, "zstd"):
				q = &qz
			case strings.EqualFold(name, "br"):
				q = &qb
			case strings.EqualFold(name, "gzip"), strings.EqualFold(name, "x-gzip"):
				q = &qg
			case strings.EqualFold(name, "identity"):
				q = &qi
			default:
				continue
			}
			if *q < 0 { // the first mention counts
				*q = qValue(params)
			}
		}
	}
	best, c := 0, identity
	if frames && qz > best {
		best, c = qz, zstdFrames
	}
	if text && qb > best {
		best, c = qb, brotlied
	}
	if text && qg > best {
		best, c = qg, gzipped
	}
	if qi > best {
		return identity
	}
	return c
}

// qValue reads the weight among ";"-separated parameters, in thousandths
// (default 1000); a malformed one is 0.
func qValue(params string) int {
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		k, val, ok := strings.Cut(p, "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		val = strings.TrimSpace(val)
		if !qPositive(val) {
			return 0
		}
		n, scale := 0, 1000
		for i := 0; i < len(val); i++ {
			if c := val[i]; c >= '0' && c <= '9' {
				n = n*10 + int(c-'0')
				if i > 0 {
					scale /= 10
				}
			}
		}
		return n * scale
	}
	return 1000
}
