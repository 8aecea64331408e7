package unpack

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/cairnhq/cairn/internal/release"
)

// craft builds a rootfs artifact of the given entries by hand, without the
// packer's checks: what a hostile release can hold. Every file's content
// (contents[path], or nothing) sits in one shared frame holding the whole
// tar stream; the TOC's tree digest is computed from the entries as given
// (so a wrong sha256 in an entry makes a release whose tree does not match
// its content).
func craft(t testing.TB, entries []release.Entry, contents map[string][]byte) []byte {
	t.Helper()
	slices.SortStableFunc(entries, func(a, b release.Entry) int { return strings.Compare(a.Path, b.Path) })
	var tarb bytes.Buffer
	tw := tar.NewWriter(&tarb)
	for i := range entries {
		e := &entries[i]
		c := contents[e.Path]
		if e.Type == release.TypeFile {
			e.Size = int64(len(c))
			if e.SHA256 == "" {
				s := sha256.Sum256(c)
				e.SHA256 = hex.EncodeToString(s[:])
			}
		}
		h := &tar.Header{Name: e.Path, Mode: int64(e.Mode), Uid: int(e.UID), Gid: int(e.GID), ModTime: time.Unix(0, 0),
			Linkname: e.Link, Devmajor: int64(e.DevMajor), Devminor: int64(e.DevMinor)}
		switch e.Type {
		case release.TypeDir:
			h.Typeflag, h.Name = tar.TypeDir, e.Path+"/"
		case release.TypeSymlink:
			h.Typeflag = tar.TypeSymlink
		case release.TypeHardlink:
			h.Typeflag = tar.TypeLink
		case release.TypeChar:
			h.Typeflag = tar.TypeChar
		case release.TypeBlock:
			h.Typeflag = tar.TypeBlock
		case release.TypeFifo:
			h.Typeflag = tar.TypeFifo
		default:
			h.Typeflag, h.Size = tar.TypeReg, e.Size
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Skipf("no tar header for %q: %v", e.Path, err) // fuzz inputs only
		}
		tw.Flush()
		if e.Size > 0 {
			e.Shared, e.InFrame = true, int64(tarb.Len())
			tw.Write(c)
		}
	}
	tw.Close()
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderCRC(true))
	data := enc.EncodeAll(tarb.Bytes(), nil)
	for i := range entries {
		if entries[i].Size > 0 {
			entries[i].FrameOffset, entries[i].FrameLength = 0, int64(len(data))
		}
	}
	toc := release.TOC{Version: 1, Kind: release.KindRootfs, DataLength: int64(len(data)),
		TarLength: int64(tarb.Len()), Entries: entries, TreeSHA256: release.RootfsTreeDigest(entries)}
	js, err := json.Marshal(&toc)
	if err != nil {
		t.Fatal(err)
	}
	tocFrame := skippable(0x184D2A5C, enc.EncodeAll(js, nil))
	art := append(data, tocFrame...)
	f := []byte("CAIRNTOC")
	f = binary.LittleEndian.AppendUint32(f, 1)
	f = binary.LittleEndian.AppendUint32(f, release.FlagRootfs)
	f = binary.LittleEndian.AppendUint64(f, uint64(len(data)))
	f = binary.LittleEndian.AppendUint64(f, uint64(len(tocFrame)))
	return append(art, skippable(0x184D2A5D, f)...)
}

func skippable(magic uint32, p []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, magic)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(p)))
	return append(b, p...)
}
