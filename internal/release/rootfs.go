package release

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// A rootfs release (docs/format.md, "Rootfs releases") is a static release
// that also keeps what a Linux root filesystem needs: owners, the full
// mode (setuid, setgid, sticky), hard links, devices, fifos, symlinks with
// any target, and the extended attributes KeepXattr names. The footer has
// FlagRootfs set and the TOC has "kind":"rootfs".

// paxXattr is the PAX record prefix of an extended attribute, as GNU tar
// and star write and read it.
const paxXattr = "SCHILY.xattr."

// Bounds of one extended attribute (Linux's XATTR_NAME_MAX, XATTR_SIZE_MAX).
const (
	maxXattrName  = 255
	maxXattrValue = 64 << 10
)

// KeepXattr reports whether a rootfs release keeps the extended attribute
// name: security.capability (file capabilities, which ping and similar
// binaries need) and user.* (set by applications, meaningful in any
// root). Others are dropped: security.selinux, security.ima/evm and
// trusted.* describe the build host's policy or overlay state, and
// system.posix_acl_* are not kept by this format version.
func KeepXattr(name string) bool {
	return name == "security.capability" || (strings.HasPrefix(name, "user.") && len(name) > len("user."))
}

func sortedXattrs(x map[string][]byte) []string {
	if len(x) == 0 {
		return nil
	}
	return slices.Sorted(maps.Keys(x))
}

// sameXattrs reports whether tar header h carries exactly want's xattrs.
func sameXattrs(h, want *tar.Header) bool {
	n := 0
	for k, v := range h.PAXRecords {
		if name, ok := strings.CutPrefix(k, paxXattr); ok {
			n++
			if w, ok := want.PAXRecords[paxXattr+name]; !ok || w != v {
				return false
			}
		}
	}
	return n == len(want.PAXRecords)
}

// Digest is the tree digest of the TOC's entries (TreeDigest for a static
// release, RootfsTreeDigest for a rootfs).
func (t *TOC) Digest() string {
	if t.Kind == KindRootfs {
		return RootfsTreeDigest(t.Entries)
	}
	return TreeDigest(t.Entries)
}

// RootfsTreeDigest is the tree digest of a rootfs: sha256 over one line
// per entry, in path order,
//
//	type mode size sha256 uid gid devmajor devminor path\x00link\x00xattrs\n
//
// (mode in octal, the rest in decimal; xattrs is hex(name)=hex(value)
// pairs joined by ",", names sorted).
func RootfsTreeDigest(entries []Entry) string {
	h := sha256.New()
	var line []byte
	for i := range entries {
		e := &entries[i]
		line = append(line[:0], e.Type...)
		line = strconv.AppendUint(append(line, ' '), uint64(e.Mode), 8)
		line = strconv.AppendInt(append(line, ' '), e.Size, 10)
		line = append(append(line, ' '), e.SHA256...)
		for _, n := range []uint32{e.UID, e.GID, e.DevMajor, e.DevMinor} {
			line = strconv.AppendUint(append(line, ' '), uint64(n), 10)
		}
		line = append(append(line, ' '), e.Path...)
		line = append(append(line, 0), e.Link...)
		line = append(line, 0)
		for k, name := range sortedXattrs(e.Xattrs) {
			if k > 0 {
				line = append(line, ',')
			}
			line = hex.AppendEncode(line, []byte(name))
			line = hex.AppendEncode(append(line, '='), e.Xattrs[name])
		}
		h.Write(append(line, '\n'))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// validateRootfs checks entry i of a rootfs TOC beyond what every entry
// needs: its mode, device numbers, xattrs and hard link.
func (t *TOC) validateRootfs(i int) error {
	e := &t.Entries[i]
	if e.Mode&^0o7777 != 0 {
		return corruptf("entry %q: mode %o", e.Path, e.Mode)
	}
	if (e.DevMajor != 0 || e.DevMinor != 0) && e.Type != TypeChar && e.Type != TypeBlock {
		return corruptf("entry %q: device numbers on a %s", e.Path, e.Type)
	}
	if len(e.Xattrs) > 0 && e.Type != TypeFile && e.Type != TypeDir {
		return corruptf("entry %q: xattrs on a %s", e.Path, e.Type)
	}
	for name, v := range e.Xattrs {
		if err := checkXattr(name, v); err != nil {
			return corruptf("entry %q: %v", e.Path, err)
		}
	}
	switch e.Type {
	case TypeSymlink:
		if e.Link == "" {
			return corruptf("entry %q: symlink without a target", e.Path)
		}
	case TypeHardlink:
		// The target is an earlier entry of type file (the sorted TOC puts
		// the first path of a group of links first): never a path that
		// resolves through a symlink, never a later entry.
		j, ok := slices.BinarySearchFunc(t.Entries[:i], e.Link, func(x Entry, p string) int { return strings.Compare(x.Path, p) })
		if !ok || t.Entries[j].Type != TypeFile {
			return corruptf("entry %q: hard link to %q, not an earlier file", e.Path, e.Link)
		}
	default:
		if e.Link != "" {
			return corruptf("entry %q: a link target on a %s", e.Path, e.Type)
		}
	}
	return nil
}

// checkXattr accepts a kept extended attribute within Linux's bounds.
func checkXattr(name string, v []byte) error {
	switch {
	case !KeepXattr(name):
		return invalidf("extended attribute %q is not kept by the format", name)
	case len(name) > maxXattrName || len(v) > maxXattrValue:
		return invalidf("extended attribute %q over Linux's limits", name)
	case checkText(name) != nil:
		return invalidf("extended attribute name %q", name)
	}
	return nil
}
