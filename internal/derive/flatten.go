// Package derive owns derived artifacts: a rootfs release flattened from an
// OCI image, and a read-only erofs image built from a rootfs release. Both
// are content-addressed and deterministic (the same source gives the same
// bytes), recorded with the digest they derive from (meta.Derived) and
// GC-rooted with it; each is derived on demand, once however many callers
// ask at once (see Deriver).
package derive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// Flatten writes the filesystem of img as one tar stream to w: its layers
// applied in order, whiteouts and opaque directories honoured, as
// go-containerregistry's mutate.Extract (the code behind `crane export`)
// does. The stream is a function of the image's layers only, so one image
// digest always gives the same bytes.
//
// One thing differs from mutate.Extract: it walks the layers from the top,
// so a hard link in an upper layer to a file of a lower one comes before
// its target and `tar -x` cannot create it. Flatten holds such a link back
// until its target has been written (a link's header has no content, so
// this costs no spooling) and drops it if its target never comes (the
// target was whited out, or is not a regular file).
func Flatten(ctx context.Context, img v1.Image, w io.Writer) error {
	rc := mutate.Extract(img) // a pipe fed by a goroutine; Close stops it
	defer rc.Close()
	stop := context.AfterFunc(ctx, func() { rc.Close() })
	defer stop()
	err := relink(rc, w)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// relink copies the tar stream r to w, holding back each hard link whose
// target has not been written yet until it has been.
func relink(r io.Reader, w io.Writer) error {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	written := map[string]byte{}          // name → typeflag, for every entry written
	waiting := map[string][]*tar.Header{} // target → links waiting for it
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("flatten: %w", err)
		}
		h.Name = path.Clean(h.Name)
		if h.Typeflag == tar.TypeLink {
			h.Linkname = path.Clean(h.Linkname)
			if t, ok := written[h.Linkname]; !ok {
				waiting[h.Linkname] = append(waiting[h.Linkname], h)
				continue
			} else if t != tar.TypeReg {
				continue // a link to what is not a file: tar -x would fail too
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if h.Size > 0 && (h.Typeflag == tar.TypeReg || h.Typeflag == tar.TypeRegA) {
			if _, err := io.CopyN(tw, tr, h.Size); err != nil {
				return fmt.Errorf("flatten: %w", err)
			}
		}
		t := h.Typeflag
		if t == tar.TypeRegA {
			t = tar.TypeReg
		}
		if t == tar.TypeLink {
			t = written[h.Linkname] // a link to a file is that file
		}
		written[h.Name] = t
		// Write the links that waited for h, and those that waited for them.
		for next := []string{h.Name}; len(next) > 0; next = next[1:] {
			ls := waiting[next[0]]
			delete(waiting, next[0])
			if written[next[0]] != tar.TypeReg {
				continue
			}
			for _, l := range ls {
				if err := tw.WriteHeader(l); err != nil {
					return err
				}
				written[l.Name] = tar.TypeReg
				next = append(next, l.Name)
			}
		}
	}
	return tw.Close()
}
