// Package release owns the release format: packing a tree into a
// deterministic, seekable tar.zst, reading its table of contents, opening
// files through ranged reads, verifying an artifact, and safely ingesting an
// uploaded tar. docs/format.md is the byte-level specification.
package release

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Format constants of format version 1. Changing any of them changes the
// bytes of every release, so they only change with FormatVersion.
const (
	FormatVersion = 1

	// ChunkSize is the uncompressed size of each frame of a file stored in
	// frames of its own (the last frame of a file may be shorter).
	ChunkSize = 4 << 20
	// SmallFile: regular files smaller than this share frames with their
	// neighbours; larger ones get frames of their own.
	SmallFile = 64 << 10
	// GroupSize: a shared frame is closed once its uncompressed size reaches
	// it after a small file.
	GroupSize = 512 << 10
	// MaxShared: a shared frame is closed once its uncompressed size reaches
	// it after an entry without content (headers only). It is larger than
	// GroupSize so that the frames of trees packed before the rule existed
	// keep their bytes, unless a run of headers alone filled MaxShared.
	MaxShared = ChunkSize

	tocMagic    = 0x184D2A5C // skippable frame holding the TOC
	footerMagic = 0x184D2A5D // skippable frame holding the footer
	footerID    = "CAIRNTOC"
	// FooterSize is the fixed size of the footer frame at the end of an artifact.
	FooterSize = 8 + 32

	// maxTOCBytes bounds the decoded TOC a reader accepts.
	maxTOCBytes = 256 << 20

	// FlagRootfs is the footer flag of a rootfs release (docs/format.md,
	// "Rootfs releases"); a static release has no flag set.
	FlagRootfs = 1
)

// Release kinds as the TOC records them ("" is static).
const (
	KindStatic = ""
	KindRootfs = "rootfs"
)

// maxNameBytes bounds the bytes of the paths and link targets of one tree
// (64 MiB: 100,000 entries of 670 bytes). Each path may be 4 KiB, so
// without it --max-files entries could hold 400 MiB of names in memory and
// make a TOC over what a reader accepts. A variable for tests.
var maxNameBytes int64 = 64 << 20

// maxTOCJSON bounds the TOC a packer writes: never one its reader refuses.
// A variable for tests.
var maxTOCJSON = maxTOCBytes

// Errors of the format. Bad input from a client wraps ErrInvalid or ErrTooLarge.
var (
	ErrInvalid  = errors.New("invalid release input")
	ErrTooLarge = errors.New("release input over limits")
	ErrCorrupt  = errors.New("corrupt release artifact")
)

func invalidf(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

func corruptf(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, a...))
}

// Footer locates the TOC frame.
type Footer struct {
	Version   uint32
	Flags     uint32 // FlagRootfs or 0
	TOCOffset int64  // offset of the TOC skippable frame (its 8-byte header)
	TOCLength int64  // length of the whole TOC skippable frame
}

// appendSkippable appends a zstd skippable frame holding payload.
func appendSkippable(dst []byte, magic uint32, payload []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, magic)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(payload)))
	return append(dst, payload...)
}

// encodeFooter returns the FooterSize bytes of the footer frame.
func encodeFooter(f Footer) []byte {
	p := make([]byte, 0, 32)
	p = append(p, footerID...)
	p = binary.LittleEndian.AppendUint32(p, f.Version)
	p = binary.LittleEndian.AppendUint32(p, f.Flags)
	p = binary.LittleEndian.AppendUint64(p, uint64(f.TOCOffset))
	p = binary.LittleEndian.AppendUint64(p, uint64(f.TOCLength))
	return appendSkippable(make([]byte, 0, FooterSize), footerMagic, p)
}

// ParseFooter decodes the last FooterSize bytes of an artifact of the given size.
func ParseFooter(b []byte, size int64) (Footer, error) {
	if len(b) != FooterSize {
		return Footer{}, corruptf("footer is %d bytes, want %d", len(b), FooterSize)
	}
	le := binary.LittleEndian
	if le.Uint32(b[0:]) != footerMagic || le.Uint32(b[4:]) != 32 || string(b[8:16]) != footerID {
		return Footer{}, corruptf("no cairn footer")
	}
	f := Footer{Version: le.Uint32(b[16:])}
	if f.Version != FormatVersion {
		return Footer{}, corruptf("format version %d not supported", f.Version)
	}
	if f.Flags = le.Uint32(b[20:]); f.Flags&^FlagRootfs != 0 {
		return Footer{}, corruptf("unknown footer flags")
	}
	off, n := le.Uint64(b[24:]), le.Uint64(b[32:])
	end := uint64(size) - FooterSize
	if size < FooterSize || n < 8 || off > end || n > end-off || off+n != end {
		return Footer{}, corruptf("footer points outside the artifact")
	}
	f.TOCOffset, f.TOCLength = int64(off), int64(n)
	return f, nil
}
