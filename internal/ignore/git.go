package ignore

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ExcludeFile is the repository's own ignore file, below its git directory.
const ExcludeFile = "info/exclude"

// readGitIgnore reads the .gitignore of the directory rel ("" for the
// root) of the tree root; its patterns apply to rel and below. A missing
// one has none, and so has a symbolic link, which git does not follow
// either.
func readGitIgnore(root, rel string) ([]*rule, error) {
	path := filepath.Join(root, filepath.FromSlash(rel), GitIgnoreFile)
	name, domain := GitIgnoreFile, []string(nil)
	if rel != "" {
		name, domain = rel+"/"+GitIgnoreFile, strings.Split(rel, "/")
	}
	if fi, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) || err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return nil, nil
	}
	return readRules(path, name, domain)
}

// readExclude reads the info/exclude of the git directory of the tree
// root: root/.git, or where a .git file (of a linked work tree or a
// submodule) points, and for a linked work tree its common directory. A
// tree that is no repository's root has none.
func readExclude(root string) ([]*rule, error) {
	dot := filepath.Join(root, ".git")
	fi, err := os.Lstat(dot)
	if err != nil {
		return nil, nil
	}
	name := ".git/" + ExcludeFile // wherever it is, as git users name it
	gitDir := dot
	if fi.Mode().IsRegular() {
		// "gitdir: PATH", PATH relative to the work tree.
		target, ok := pointer(dot, "gitdir:")
		if !ok {
			return nil, nil
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(root, target)
		}
		gitDir = target
		// A linked work tree's git directory names the common one,
		// relative to itself, which holds info/exclude.
		if common, ok := pointer(filepath.Join(gitDir, "commondir"), ""); ok {
			if !filepath.IsAbs(common) {
				common = filepath.Join(gitDir, common)
			}
			gitDir = common
		}
	} else if !fi.IsDir() {
		return nil, nil
	}
	return readRules(filepath.Join(gitDir, filepath.FromSlash(ExcludeFile)), name, nil)
}

// pointer reads the one-line file path (a .git file or a commondir) and
// returns what follows prefix on its first line; false when it is missing,
// large or lacks the prefix.
func pointer(path, prefix string) (string, bool) {
	f, err := os.Open(path)
	if err != nil {
		return "", false
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4097))
	if err != nil || len(b) > 4096 {
		return "", false
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	s, ok := strings.CutPrefix(strings.TrimSuffix(string(line), "\r"), prefix)
	s = strings.TrimSpace(s)
	return s, ok && s != ""
}
