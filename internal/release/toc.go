package release

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Entry types.
const (
	TypeFile    = "file"
	TypeDir     = "dir"
	TypeSymlink = "symlink"
	// Types of rootfs releases only.
	TypeHardlink = "hardlink" // Link names an earlier entry of type file
	TypeChar     = "char"     // character device: DevMajor, DevMinor
	TypeBlock    = "block"    // block device: DevMajor, DevMinor
	TypeFifo     = "fifo"
)

// Entry is one path of the tree, with where its content sits in the artifact.
type Entry struct {
	Path        string `json:"path"` // slash-separated, relative, no "./", no trailing slash
	Type        string `json:"type"`
	Mode        uint32 `json:"mode"`
	Size        int64  `json:"size,omitempty"`
	SHA256      string `json:"sha256,omitempty"` // hex sha256 of the content (files)
	ContentType string `json:"content_type,omitempty"`
	Link        string `json:"link,omitempty"` // symlink target; hardlink: the path of the entry it links to

	// Rootfs releases only (docs/format.md, "Rootfs releases").
	UID      uint32            `json:"uid,omitempty"`
	GID      uint32            `json:"gid,omitempty"`
	DevMajor uint32            `json:"devmajor,omitempty"`
	DevMinor uint32            `json:"devminor,omitempty"`
	Xattrs   map[string][]byte `json:"xattrs,omitempty"` // kept names only (KeepXattr)

	// Location of the content (files with Size > 0).
	FrameOffset int64 `json:"frame_offset,omitempty"` // offset of the first frame
	FrameLength int64 `json:"frame_length,omitempty"` // compressed bytes of all its frames
	// Shared: the frame also holds other entries; the content starts at
	// InFrame in the decompressed frame. Otherwise the frames hold exactly
	// the content, ChunkSize bytes each but the last.
	Shared  bool    `json:"shared,omitempty"`
	InFrame int64   `json:"in_frame,omitempty"`
	Chunks  []int64 `json:"chunks,omitempty"` // compressed length of each frame when more than one
}

// TOC is the table of contents of a release.
type TOC struct {
	Version    int     `json:"version"`
	Kind       string  `json:"kind,omitempty"` // KindRootfs, or "" (static)
	TreeSHA256 string  `json:"tree_sha256"`    // TreeDigest of the entries: names the tree, not its compression
	DataLength int64   `json:"data_length"`    // compressed bytes of all data frames
	TarLength  int64   `json:"tar_length"`     // uncompressed bytes of the tar stream
	Entries    []Entry `json:"entries"`

	index map[string]int
}

// Manifest is the summary recorded on a version.
type Manifest struct {
	Files      int64  `json:"files"`
	TotalBytes int64  `json:"total_bytes"`
	Entrypoint string `json:"entrypoint"`
}

// Manifest derives the artifact manifest; entrypoint "" means index.html.
func (t *TOC) Manifest(entrypoint string) Manifest {
	if entrypoint == "" {
		entrypoint = "index.html"
	}
	m := Manifest{Entrypoint: entrypoint}
	for _, e := range t.Entries {
		if e.Type == TypeFile {
			m.Files++
			m.TotalBytes += e.Size
		}
	}
	return m
}

// Lookup finds the entry for a cleaned relative path ("" finds nothing).
func (t *TOC) Lookup(p string) (*Entry, bool) {
	i, ok := t.index[p]
	if !ok {
		return nil, false
	}
	return &t.Entries[i], true
}

func (t *TOC) buildIndex() {
	t.index = make(map[string]int, len(t.Entries))
	for i, e := range t.Entries {
		t.index[e.Path] = i
	}
}

var (
	tocEncOnce sync.Once
	tocEnc     *zstd.Encoder
	tocDec     *zstd.Decoder
)

func tocCodec() (*zstd.Encoder, *zstd.Decoder) {
	tocEncOnce.Do(func() {
		tocEnc = newEncoder()
		tocDec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxMemory(maxTOCBytes))
	})
	return tocEnc, tocDec
}

// encodeTOC returns the TOC skippable frame, or ErrTooLarge for a TOC
// over what a reader accepts.
func encodeTOC(t *TOC) ([]byte, error) {
	js := appendTOCJSON(nil, t)
	if len(js) > maxTOCJSON {
		return nil, fmt.Errorf("%w: a table of contents of %d bytes, over %d", ErrTooLarge, len(js), maxTOCJSON)
	}
	enc, _ := tocCodec()
	return appendSkippable(nil, tocMagic, enc.EncodeAll(js, nil)), nil
}

// ParseTOC decodes and validates a TOC frame of an artifact of dataLength
// compressed data bytes (the TOC frame's own offset).
func ParseTOC(frame []byte, dataLength int64) (*TOC, error) {
	if len(frame) < 8 || binary.LittleEndian.Uint32(frame) != tocMagic ||
		int(binary.LittleEndian.Uint32(frame[4:])) != len(frame)-8 {
		return nil, corruptf("bad TOC frame header")
	}
	_, dec := tocCodec()
	js, err := dec.DecodeAll(frame[8:], nil)
	if err != nil {
		return nil, corruptf("TOC does not decompress")
	}
	d := json.NewDecoder(bytes.NewReader(js))
	d.DisallowUnknownFields()
	var t TOC
	if err := d.Decode(&t); err != nil {
		return nil, corruptf("TOC is not valid JSON")
	}
	if err := t.validate(dataLength); err != nil {
		return nil, err
	}
	t.buildIndex()
	return &t, nil
}

func (t *TOC) validate(dataLength int64) error {
	if t.Version != FormatVersion {
		return corruptf("TOC version %d", t.Version)
	}
	if t.Kind != KindStatic && t.Kind != KindRootfs {
		return corruptf("TOC kind %q", t.Kind)
	}
	if t.DataLength != dataLength || !isHexSHA(t.TreeSHA256) || t.TarLength < 1024 {
		return corruptf("TOC header fields")
	}
	if !sort.SliceIsSorted(t.Entries, func(i, j int) bool { return t.Entries[i].Path < t.Entries[j].Path }) {
		return corruptf("TOC entries not sorted")
	}
	for i := range t.Entries {
		e := &t.Entries[i]
		if i > 0 && t.Entries[i-1].Path == e.Path {
			return corruptf("duplicate path %q", e.Path)
		}
		if err := checkRelPath(e.Path); err != nil {
			return corruptf("entry path %q", e.Path)
		}
		if t.Kind == KindRootfs {
			if err := t.validateRootfs(i); err != nil {
				return err
			}
		} else if e.UID != 0 || e.GID != 0 || e.DevMajor != 0 || e.DevMinor != 0 || e.Xattrs != nil ||
			(e.Type != TypeFile && e.Type != TypeDir && e.Type != TypeSymlink) {
			return corruptf("entry %q: rootfs fields in a static release", e.Path)
		}
		if err := e.validate(dataLength); err != nil {
			return err
		}
	}
	return nil
}

func (e *Entry) validate(dataLength int64) error {
	switch e.Type {
	case TypeDir, TypeSymlink, TypeHardlink, TypeChar, TypeBlock, TypeFifo:
		if e.Size != 0 || e.FrameLength != 0 {
			return corruptf("entry %q: content on a non-file", e.Path)
		}
		return nil
	case TypeFile:
	default:
		return corruptf("entry %q: type %q", e.Path, e.Type)
	}
	if e.Size < 0 || !isHexSHA(e.SHA256) {
		return corruptf("entry %q: size or hash", e.Path)
	}
	if e.Size == 0 {
		return nil
	}
	if e.FrameOffset < 0 || e.FrameLength <= 0 || e.FrameOffset > dataLength || e.FrameLength > dataLength-e.FrameOffset {
		return corruptf("entry %q: frame outside the data", e.Path)
	}
	if e.Shared {
		if e.InFrame < 0 || e.Size >= SmallFile || len(e.Chunks) != 0 {
			return corruptf("entry %q: shared frame fields", e.Path)
		}
		return nil
	}
	if e.InFrame != 0 {
		return corruptf("entry %q: in-frame offset on own frames", e.Path)
	}
	want := (e.Size + ChunkSize - 1) / ChunkSize
	if want == 1 && len(e.Chunks) == 0 {
		return nil
	}
	if int64(len(e.Chunks)) != want {
		return corruptf("entry %q: %d chunks, want %d", e.Path, len(e.Chunks), want)
	}
	var sum int64
	for _, c := range e.Chunks {
		if c <= 0 || c > e.FrameLength-sum {
			return corruptf("entry %q: chunk lengths", e.Path)
		}
		sum += c
	}
	if sum != e.FrameLength {
		return corruptf("entry %q: chunk lengths", e.Path)
	}
	return nil
}

func isHexSHA(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

// checkRelPath accepts a clean, relative, slash-separated path inside the tree.
func checkRelPath(p string) error {
	switch {
	case p == "" || p == ".":
		return invalidf("empty path")
	case len(p) > 4096:
		return invalidf("path longer than 4096 bytes")
	case strings.HasPrefix(p, "/"):
		return invalidf("absolute path %q", p)
	case strings.ContainsRune(p, 0):
		return invalidf("path with a NUL byte")
	case p == ".." || strings.HasPrefix(p, "../") || strings.Contains(p, "/../") || strings.HasSuffix(p, "/.."):
		return invalidf("path %q leaves the tree", p)
	case path.Clean(p) != p:
		return invalidf("path %q is not clean", p)
	}
	return nil
}

// CheckPath reports whether p is a clean, relative path inside a tree.
func CheckPath(p string) error { return checkRelPath(p) }
