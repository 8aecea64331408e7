package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"unicode"

	"github.com/cairnhq/cairn/internal/release"
	"github.com/cairnhq/cairn/internal/release/pathres"
)

// A build's output is the build's own writes, untrusted. What is wrong
// with it goes to the client in BuildResult.Error, so these messages name
// the build's paths only (relative to /src: "output dist/x: …"), never
// the host's (the merged root, the data directory): an errno is said in
// its own words (syscall.Errno's text), a path error's path dropped.

// outputDir is the output directory under the merged root, or why it is
// refused. Every component is checked with Lstat: the build wrote them,
// and a symlink among them could name a host path.
func outputDir(merged, output string) (string, string) {
	p, shown := filepath.Join(merged, "src"), "/src"
	comps := []string{""}
	if output != "." {
		comps = append(comps, strings.Split(output, "/")...)
	}
	for i, c := range comps {
		if i > 0 {
			p, shown = filepath.Join(p, c), strings.Join(comps[1:i+1], "/")
		}
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return "", "output " + quoted(shown) + ": no such directory"
		case err != nil:
			return "", "output " + quoted(shown) + ": " + errnoWords(err)
		case fi.Mode()&fs.ModeSymlink != 0:
			return "", "output " + quoted(shown) + ": is a symlink"
		case !fi.IsDir():
			return "", "output " + quoted(shown) + ": not a directory"
		}
	}
	return p, ""
}

// checkOutput checks the output tree at dir (the directory output of
// /src) for what the static format refuses, before it is packed, and
// says what in the build's terms: an entry the format does not hold (a
// device, a fifo, a socket), a link that leaves the output by any route
// (as release.PackDir resolves them), a name the format refuses, more
// entries or bytes than lim.
func checkOutput(dir, output string, lim release.Limits) string {
	at := func(rel, what string) string {
		shown := output
		switch {
		case rel == "." && output == ".":
			shown = "/src"
		case output == ".":
			shown = rel
		case rel != ".":
			shown = path.Join(output, rel)
		}
		return "output " + quoted(shown) + ": " + what
	}
	var (
		msg          string
		files, bytes int64
		tree         = pathres.New()
		stop         = errors.New("stop")
	)
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		rel, rerr := filepath.Rel(dir, p)
		if rerr != nil {
			rel = "."
		}
		rel = filepath.ToSlash(rel)
		if err != nil {
			msg = at(rel, errnoWords(err))
			return stop
		}
		if rel == "." {
			return nil
		}
		if files++; lim.MaxFiles > 0 && files > lim.MaxFiles {
			msg = at(".", fmt.Sprintf("more than %d files and directories", lim.MaxFiles))
			return stop
		}
		if release.CheckName(rel) != nil {
			msg = at(rel, "a name the release format refuses (not UTF-8, a control character, a backslash or a component over 255 bytes)")
			return stop
		}
		fi, err := d.Info()
		if err != nil {
			msg = at(rel, errnoWords(err))
			return stop
		}
		kind, target := pathres.Other, ""
		switch m := fi.Mode(); {
		case m.IsRegular():
			if bytes += fi.Size(); lim.MaxBytes > 0 && bytes > lim.MaxBytes {
				msg = at(".", "more than "+sizeWords(lim.MaxBytes))
				return stop
			}
		case m.IsDir():
			kind = pathres.Dir
		case m&fs.ModeSymlink != 0:
			if target, err = os.Readlink(p); err != nil {
				msg = at(rel, errnoWords(err))
				return stop
			}
			if release.CheckLink(rel, target) != nil {
				msg = at(rel, "a link the release format refuses (empty, unprintable or too long)")
				if strings.HasPrefix(target, "/") {
					msg = at(rel, "a link that leaves the output")
				}
				return stop
			}
			kind = pathres.Symlink
		default:
			msg = at(rel, "a device, fifo or socket; only files, directories and links are packed")
			return stop
		}
		if tree.Add(rel, kind, target) != nil {
			msg = at(rel, "cannot be packed")
			return stop
		}
		return nil
	})
	if msg != "" {
		return msg
	}
	if p, _, found := tree.Escaping(); found {
		return at(p, "a link that leaves the output")
	}
	return ""
}

// pack packs dir as a static release into file tmp, then copies it to w.
// A tree the format refuses (past what checkOutput checked: the bytes of
// all names, the size of the TOC) is the build's failure, msg, in the
// format's words, whose paths are relative to dir; err is the host's.
func (r *Runtime) pack(ctx context.Context, dir string, lim release.Limits, tmp string, w io.Writer) (sha, msg string, err error) {
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	res, err := release.PackDir(ctx, dir, f, release.PackOptions{Limits: lim})
	if errors.Is(err, release.ErrInvalid) || errors.Is(err, release.ErrTooLarge) {
		// release's messages of bad input name paths of the tree only.
		m := err.Error()
		for _, e := range []error{release.ErrInvalid, release.ErrTooLarge} {
			m = strings.TrimPrefix(m, e.Error()+": ")
		}
		return "", "the release format refuses it: " + m, nil
	}
	if err != nil {
		return "", "", fmt.Errorf("pack: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", "", err
	}
	if _, err := io.Copy(w, f); err != nil {
		return "", "", fmt.Errorf("write the artifact: %w", err)
	}
	return res.SHA256, "", nil
}

// packLimits are the limits of a build's output.
func (r *Runtime) packLimits() release.Limits {
	if r.cfg.PackLimits == (release.Limits{}) {
		return DefaultPackLimits
	}
	return r.cfg.PackLimits
}

// errnoWords is what went wrong in err without its path: the errno's
// text ("permission denied", "file name too long").
func errnoWords(err error) string {
	var en syscall.Errno
	if errors.As(err, &en) {
		return en.Error()
	}
	return "cannot be read"
}

// sizeWords is n bytes in the largest binary unit that divides it:
// "64 MiB", "10 GiB", "1000 bytes".
func sizeWords(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + " " + u.name
		}
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// quoted is p, quoted as Go quotes it when it is not plain printable
// text: a build's names may hold anything but NUL and "/".
func quoted(p string) string {
	if strings.IndexFunc(p, func(r rune) bool { return !unicode.IsPrint(r) || r == unicode.ReplacementChar }) >= 0 {
		return strconv.Quote(p)
	}
	return p
}
