package meta

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"unicode/utf8"
)

// The audit log is a hash chain: each event stores Hash, the sha256 of its
// canonical encoding, and that encoding includes PrevHash, the Hash of the
// event before it (by id). Backends compute both with EventHash inside the
// transaction that appends the event; internal/audit walks and checks the
// chain. docs/design.md ("Audit log") is the specification; keep them equal.

// EventTimeFormat is how the canonical encoding writes Event.At (in UTC):
// RFC 3339 with exactly nine fractional digits.
const EventTimeFormat = "2006-01-02T15:04:05.000000000Z"

// EventHash returns the lowercase hex sha256 of EncodeEvent(e), the value of
// e.Hash. e.PrevHash must already be set; e.Hash is ignored.
func EventHash(e Event) string {
	sum := sha256.Sum256(EncodeEvent(e))
	return hex.EncodeToString(sum[:])
}

// EncodeEvent returns the canonical encoding of e: the JSON object
//
//	{"action":…,"actor":…,"at":…,"deployment_id":…,"detail":…,"hostname":…,
//	 "id":…,"prev_hash":…,"release_sha256":…,"version_id":…}
//
// serialised as RFC 8785 (JSON Canonicalization Scheme) does: members in
// this (sorted) order, no whitespace, id a decimal integer, at formatted
// with EventTimeFormat in UTC, detail the stored detail text as a JSON
// string (not parsed) or null when there is none, every other member a
// string. Strings escape only '"', '\' and the control characters below
// U+0020 (\b \t \n \f \r, else \u00xx with lowercase hex); all other text
// is copied as is (bytes that are not valid UTF-8 too, so that the
// encoding stays one-to-one). e.Hash is not part of it.
func EncodeEvent(e Event) []byte {
	b := make([]byte, 0, 512+len(e.Detail))
	b = append(b, `{"action":`...)
	b = appendJCSString(b, e.Action)
	b = append(b, `,"actor":`...)
	b = appendJCSString(b, e.Actor)
	b = append(b, `,"at":`...)
	b = appendJCSString(b, e.At.UTC().Format(EventTimeFormat))
	b = append(b, `,"deployment_id":`...)
	b = appendJCSString(b, e.DeploymentID)
	b = append(b, `,"detail":`...)
	if len(e.Detail) == 0 {
		b = append(b, "null"...)
	} else {
		b = appendJCSString(b, string(e.Detail))
	}
	b = append(b, `,"hostname":`...)
	b = appendJCSString(b, e.Hostname)
	b = append(b, `,"id":`...)
	b = strconv.AppendInt(b, e.ID, 10)
	b = append(b, `,"prev_hash":`...)
	b = appendJCSString(b, e.PrevHash)
	b = append(b, `,"release_sha256":`...)
	b = appendJCSString(b, e.ReleaseSHA256)
	b = append(b, `,"version_id":`...)
	b = appendJCSString(b, e.VersionID)
	return append(b, '}')
}

// appendJCSString appends s as an RFC 8785 JSON string.
func appendJCSString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			_, n := utf8.DecodeRuneInString(s[i:])
			b = append(b, s[i:i+n]...) // valid or not: copied as is
			i += n
			continue
		}
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\b':
			b = append(b, '\\', 'b')
		case c == '\t':
			b = append(b, '\\', 't')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\f':
			b = append(b, '\\', 'f')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			b = append(b, c)
		}
		i++
	}
	return append(b, '"')
}
