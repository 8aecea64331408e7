package release

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// refPlace is where the reference cut puts an entry's content.
type refPlace struct {
	frame   int   // index of the first frame holding the content
	shared  bool  // the frame holds other bytes too
	inFrame int64 // offset of the content in the decompressed frame (shared)
	frames  int   // frames of its own (not shared)
}

// refCut cuts the tar stream of entries into frames following the words of
// docs/format.md ("The stream is cut into frames as follows"), not frames.go:
// a small file is appended, headers then content, to the shared frame,
// which is closed at GroupSize bytes before the padding is appended; an
// entry without content appends its headers and closes the frame at
// MaxShared; a larger file closes the shared frame after its header, then
// gets frames of exactly ChunkSize bytes, the padding opening the next
// shared frame; empty frames are never written.
func refCut(t *testing.T, entries []Entry) map[string]refPlace {
	t.Helper()
	places := map[string]refPlace{}
	frame, cur := 0, int64(0) // index and size of the current shared frame
	closeFrame := func() {
		if cur > 0 {
			frame++
			cur = 0
		}
	}
	for _, e := range entries {
		h := &tar.Header{Name: e.Path, Mode: int64(e.Mode), Size: e.Size, Linkname: e.Link, ModTime: time.Unix(0, 0)}
		switch e.Type {
		case TypeDir:
			h.Name += "/"
			h.Typeflag = tar.TypeDir
		case TypeSymlink:
			h.Typeflag = tar.TypeSymlink
		default:
			h.Typeflag = tar.TypeReg
		}
		var hdr bytes.Buffer
		if err := tar.NewWriter(&hdr).WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		cur += int64(hdr.Len())
		pad := (512 - e.Size%512) % 512
		switch {
		case e.Type != TypeFile || e.Size == 0:
			if cur >= MaxShared {
				closeFrame()
			}
		case e.Size < SmallFile:
			places[e.Path] = refPlace{frame: frame, shared: true, inFrame: cur}
			cur += e.Size
			if cur >= GroupSize {
				closeFrame()
			}
			cur += pad
		default:
			closeFrame()
			n := int((e.Size + ChunkSize - 1) / ChunkSize)
			places[e.Path] = refPlace{frame: frame, frames: n}
			frame += n
			cur = pad
		}
	}
	return places
}

// TestFrameCutMatchesSpec checks the packer's TOC against refCut for trees
// of small, big and empty files, long names and runs of headers alone that
// pass MaxShared: the same entries share a frame, at the same offsets.
func TestFrameCutMatchesSpec(t *testing.T) {
	write := func(t *testing.T, dir, name string, size int) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, bytes.Repeat([]byte{byte(len(name))}, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	trees := map[string]func(t *testing.T, dir string){
		"small": func(t *testing.T, dir string) {
			for i := range 200 {
				write(t, dir, fmt.Sprintf("s/%03d", i), (i*7919)%SmallFile)
			}
		},
		"big": func(t *testing.T, dir string) {
			write(t, dir, "a", 100)
			write(t, dir, "b", SmallFile)
			write(t, dir, "c", 2*ChunkSize+1)
			write(t, dir, "d", ChunkSize)
			write(t, dir, "e", 511)
			write(t, dir, "f", SmallFile-1)
		},
		"empty-and-long": func(t *testing.T, dir string) {
			for i := range 300 {
				name := fmt.Sprintf("l/%s%03d", strings.Repeat("n", 100+i%150), i)
				write(t, dir, name, (i%3)*(i*131%SmallFile))
				os.Symlink("l", filepath.Join(dir, fmt.Sprintf("m%03d", i)))
			}
		},
		"headers-past-maxshared": func(t *testing.T, dir string) {
			for i := range 8000 {
				write(t, dir, fmt.Sprintf("e/%05d", i), 0)
			}
			write(t, dir, "f/small", 1000)
			write(t, dir, "f/small2", 10)
		},
	}
	for name, mk := range trees {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			mk(t, dir)
			res, _ := pack(t, dir, PackOptions{})
			want := refCut(t, res.TOC.Entries)
			offsetOf := map[int]int64{} // reference frame index -> packer frame offset
			frameOf := map[int64]int{}
			checked := 0
			for _, e := range res.TOC.Entries {
				w, ok := want[e.Path]
				if !ok {
					continue
				}
				checked++
				if e.Shared != w.shared || e.InFrame != w.inFrame {
					t.Fatalf("%s: packer shared=%v in_frame=%d, spec shared=%v in_frame=%d", e.Path, e.Shared, e.InFrame, w.shared, w.inFrame)
				}
				if !w.shared && max(1, len(e.Chunks)) != w.frames {
					t.Fatalf("%s: packer %d frames, spec %d", e.Path, max(1, len(e.Chunks)), w.frames)
				}
				if off, ok := offsetOf[w.frame]; ok && off != e.FrameOffset {
					t.Fatalf("%s: spec frame %d is at %d and %d", e.Path, w.frame, off, e.FrameOffset)
				}
				if f, ok := frameOf[e.FrameOffset]; ok && f != w.frame {
					t.Fatalf("%s: offset %d is spec frames %d and %d", e.Path, e.FrameOffset, f, w.frame)
				}
				offsetOf[w.frame], frameOf[e.FrameOffset] = e.FrameOffset, w.frame
			}
			if checked == 0 {
				t.Fatal("no content entry checked")
			}
		})
	}
}
