package release

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
)

// appendTOCJSON appends exactly what json.Marshal(t) gives (the format is
// defined by encoding/json, docs/format.md), without reflection: the TOC is
// encoded at the end of every pack, after the last frame, so its cost is
// paid alone. TestTOCJSON and FuzzTOCJSON hold the two encodings equal.
func appendTOCJSON(b []byte, t *TOC) []byte {
	b = append(b, `{"version":`...)
	b = strconv.AppendInt(b, int64(t.Version), 10)
	if t.Kind != "" {
		b = appendJSONString(append(b, `,"kind":`...), t.Kind)
	}
	b = append(b, `,"tree_sha256":`...)
	b = appendJSONString(b, t.TreeSHA256)
	b = append(b, `,"data_length":`...)
	b = strconv.AppendInt(b, t.DataLength, 10)
	b = append(b, `,"tar_length":`...)
	b = strconv.AppendInt(b, t.TarLength, 10)
	b = append(b, `,"entries":`...)
	if t.Entries == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range t.Entries {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendEntryJSON(b, &t.Entries[i])
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

func appendEntryJSON(b []byte, e *Entry) []byte {
	b = append(b, `{"path":`...)
	b = appendJSONString(b, e.Path)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, e.Type)
	b = append(b, `,"mode":`...)
	b = strconv.AppendUint(b, uint64(e.Mode), 10)
	b = appendJSONInt(b, `,"size":`, e.Size)
	if e.SHA256 != "" {
		b = appendJSONString(append(b, `,"sha256":`...), e.SHA256)
	}
	if e.ContentType != "" {
		b = appendJSONString(append(b, `,"content_type":`...), e.ContentType)
	}
	if e.Link != "" {
		b = appendJSONString(append(b, `,"link":`...), e.Link)
	}
	b = appendJSONInt(b, `,"uid":`, int64(e.UID))
	b = appendJSONInt(b, `,"gid":`, int64(e.GID))
	b = appendJSONInt(b, `,"devmajor":`, int64(e.DevMajor))
	b = appendJSONInt(b, `,"devminor":`, int64(e.DevMinor))
	if len(e.Xattrs) > 0 {
		b = append(b, `,"xattrs":{`...)
		for i, name := range sortedXattrs(e.Xattrs) {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(appendJSONString(b, name), ':', '"')
			b = base64.StdEncoding.AppendEncode(b, e.Xattrs[name])
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	b = appendJSONInt(b, `,"frame_offset":`, e.FrameOffset)
	b = appendJSONInt(b, `,"frame_length":`, e.FrameLength)
	if e.Shared {
		b = append(b, `,"shared":true`...)
	}
	b = appendJSONInt(b, `,"in_frame":`, e.InFrame)
	if len(e.Chunks) > 0 {
		b = append(b, `,"chunks":[`...)
		for i, c := range e.Chunks {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, c, 10)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// appendJSONInt appends key and n unless n is 0 (omitempty).
func appendJSONInt(b []byte, key string, n int64) []byte {
	if n == 0 {
		return b
	}
	return strconv.AppendInt(append(b, key...), n, 10)
}

// appendJSONString appends s as encoding/json quotes it. Printable ASCII
// other than the characters it escapes is copied; anything else goes through
// encoding/json itself.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
