package publish

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/cairnhq/cairn/internal/release"
)

// The manifest of an incremental publish: what the CLI sends first, the
// tree without its contents. The server answers the contents it lacks
// (by sha256), the CLI uploads only those, and the server assembles the
// release, which is byte-identical to a cold `cairn pack` of the tree.

// ManifestEntry is one entry of a tree, as in a release's TOC.
type ManifestEntry struct {
	Path   string `json:"path"`
	Type   string `json:"type"` // file, dir or symlink
	Mode   uint32 `json:"mode"` // files 0644 or 0755, dirs 0755, symlinks 0777
	Size   int64  `json:"size,omitempty"`
	SHA256 string `json:"sha256,omitempty"` // files: of the content (every file, empty ones included)
	Link   string `json:"link,omitempty"`   // symlinks: the target
}

// Manifest is the body of the request that starts an incremental publish.
type Manifest struct {
	Version int             `json:"version"` // 1
	Entries []ManifestEntry `json:"entries"`
}

// MaxManifestBytes bounds a manifest's JSON: names are capped at 64 MiB in
// all (as for a tar upload), and an entry's other fields at ~200 bytes.
const MaxManifestBytes = 128 << 20

// ParseManifest reads and checks a manifest against lim, as a tar upload
// is checked: names by docs/format.md ("Names"), one entry per path, the
// modes a static release keeps, well-formed digests, and link targets as
// text (whether one leaves the tree through other links is checked when
// the release is packed). The entries come back sorted by path. Anything
// else: release.ErrInvalid; over lim: release.ErrTooLarge.
func ParseManifest(r io.Reader, lim release.Limits) (*Manifest, error) {
	body, err := io.ReadAll(io.LimitReader(r, MaxManifestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading the manifest: %v", release.ErrInvalid, err)
	}
	if len(body) > MaxManifestBytes {
		return nil, fmt.Errorf("%w: a manifest over %d bytes", release.ErrTooLarge, MaxManifestBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: the manifest is not valid JSON: %v", release.ErrInvalid, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the manifest", release.ErrInvalid)
	}
	if m.Version != 1 {
		return nil, fmt.Errorf("%w: manifest version %d (this server reads 1)", release.ErrInvalid, m.Version)
	}
	if lim.MaxFiles > 0 && int64(len(m.Entries)) > lim.MaxFiles {
		return nil, fmt.Errorf("%w: more than %d entries", release.ErrTooLarge, lim.MaxFiles)
	}
	var total int64
	for i := range m.Entries {
		if err := checkEntry(&m.Entries[i]); err != nil {
			return nil, err
		}
		if total += m.Entries[i].Size; lim.MaxBytes > 0 && total > lim.MaxBytes {
			return nil, fmt.Errorf("%w: more than %d bytes", release.ErrTooLarge, lim.MaxBytes)
		}
	}
	sort.Slice(m.Entries, func(i, j int) bool { return m.Entries[i].Path < m.Entries[j].Path })
	kinds := map[string]string{}
	for i, e := range m.Entries {
		if i > 0 && m.Entries[i-1].Path == e.Path {
			return nil, fmt.Errorf("%w: duplicate path %q", release.ErrInvalid, e.Path)
		}
		kinds[e.Path] = e.Type
	}
	// Every parent is a directory of the manifest (no entry under a file
	// or a symlink); a parent without an entry is implied, as in a tar.
	for _, e := range m.Entries {
		for dir := e.Path; ; {
			k := strings.LastIndexByte(dir, '/')
			if k < 0 {
				break
			}
			dir = dir[:k]
			if t, ok := kinds[dir]; ok && t != release.TypeDir {
				return nil, fmt.Errorf("%w: %q is under %s %q", release.ErrInvalid, e.Path, t, dir)
			}
		}
	}
	return &m, nil
}

func checkEntry(e *ManifestEntry) error {
	if err := release.CheckName(e.Path); err != nil {
		return err
	}
	bad := func(what string) error {
		return fmt.Errorf("%w: entry %q: %s", release.ErrInvalid, e.Path, what)
	}
	switch e.Type {
	case release.TypeFile:
		if e.Mode != 0o644 && e.Mode != 0o755 {
			return bad(fmt.Sprintf("file mode %#o (0644 or 0755)", e.Mode))
		}
		if e.Size < 0 {
			return bad("negative size")
		}
		if !isHexSHA256(e.SHA256) || (e.Size == 0 && e.SHA256 != emptySHA256) {
			return bad("no sha256 of its content")
		}
		if e.Link != "" {
			return bad("a file with a link target")
		}
	case release.TypeDir, release.TypeSymlink:
		if e.Size != 0 || e.SHA256 != "" {
			return bad("size or sha256 on a " + e.Type)
		}
		if e.Type == release.TypeDir {
			if e.Mode != 0o755 || e.Link != "" {
				return bad("a directory is mode 0755 without a link target")
			}
			return nil
		}
		if e.Mode != 0o777 {
			return bad("a symlink is mode 0777")
		}
		return release.CheckLink(e.Path, e.Link)
	default:
		return bad(fmt.Sprintf("type %q (file, dir or symlink)", e.Type))
	}
	return nil
}

// emptySHA256 is the sha256 of no bytes.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// isHexSHA256 is true of 64 lowercase hex digits.
func isHexSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// Missing lists, sorted and once each, the sha256s of the non-empty files
// of m that have is false.
func (m *Manifest) Missing(have func(sha string) bool) []string {
	seen := map[string]bool{}
	var out []string
	for _, e := range m.Entries {
		if e.Type != release.TypeFile || e.Size == 0 || seen[e.SHA256] {
			continue
		}
		seen[e.SHA256] = true
		if !have(e.SHA256) {
			out = append(out, e.SHA256)
		}
	}
	sort.Strings(out)
	return out
}

// Digests lists, sorted and once each, the sha256s of m's non-empty files.
func (m *Manifest) Digests() []string { return m.Missing(func(string) bool { return false }) }
