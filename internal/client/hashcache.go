package client

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// A HashCache remembers the content sha256 of the files of one tree, keyed
// by what stat tells of each: (path, size, mtime, ctime, inode, device). A
// publish of a tree whose files all match reads no file contents.
//
// Invalidation: a file whose size, mtime, ctime, inode or device differ is
// read again. Writing a file changes its ctime, which no user call can set
// back (touch -d sets mtime, and changes ctime doing so), so a content
// rewritten with its size and mtime restored is still read again; so is a
// file replaced by another (inode), moved or copied. What is not detected:
// a change made by writing the block device under the file system, or a
// clock set back together with ctime-preserving tools. A file changed
// within the timestamps' granularity of being hashed would look unchanged
// later (the "racy" case of git's index), so an entry whose mtime or ctime
// is less than RacyWindow older than its hashing is not kept.
type HashCache struct {
	path    string
	root    string
	old     map[string]cachedHash
	new     map[string]cachedHash
	Hits    int // files whose digest came from the cache
	nowFunc func() time.Time
}

// RacyWindow: see HashCache.
const RacyWindow = time.Second

type cachedHash struct {
	stamp
	SHA256 string `json:"sha256"`
}

// stamp is what stat says of a file, for the cache key.
type stamp struct {
	Size  int64  `json:"size"`
	Mtime int64  `json:"mtime_ns"`
	Ctime int64  `json:"ctime_ns"`
	Ino   uint64 `json:"ino"`
	Dev   uint64 `json:"dev"`
}

func stampOf(info fs.FileInfo) stamp {
	s := stamp{Size: info.Size(), Mtime: info.ModTime().UnixNano()}
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		s.Ctime = time.Unix(st.Ctim.Sec, st.Ctim.Nsec).UnixNano()
		s.Ino, s.Dev = st.Ino, uint64(st.Dev)
	}
	return s
}

// cacheFile is the file format: the tree's root and its files by path.
type cacheFile struct {
	Version int                   `json:"version"`
	Root    string                `json:"root"`
	Files   map[string]cachedHash `json:"files"`
}

// CacheDir is where the CLI keeps its caches, by the environment getenv
// reads: $CAIRN_CACHE_DIR, or cairn under $XDG_CACHE_HOME or
// $HOME/.cache. Without any of them there is no cache (an error).
func CacheDir(getenv func(string) string) (string, error) {
	if d := getenv("CAIRN_CACHE_DIR"); d != "" {
		return d, nil
	}
	if d := getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "cairn"), nil
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".cache", "cairn"), nil
	}
	return "", errors.New("no cache directory: neither $CAIRN_CACHE_DIR, $XDG_CACHE_HOME nor $HOME is set")
}

// OpenHashCache opens the cache of the tree rooted at root, kept under dir
// in a file named by the root's absolute path. A missing or unreadable
// cache is an empty one.
func OpenHashCache(dir, root string) (*HashCache, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(abs))
	c := &HashCache{path: filepath.Join(dir, "hashes", hex.EncodeToString(sum[:16])+".json"), root: abs,
		old: map[string]cachedHash{}, new: map[string]cachedHash{}, nowFunc: time.Now}
	if b, err := os.ReadFile(c.path); err == nil {
		var f cacheFile
		if json.Unmarshal(b, &f) == nil && f.Version == 1 && f.Root == abs && f.Files != nil {
			c.old = f.Files
		}
	}
	return c, nil
}

// lookup answers the cached digest of rel if its stamp is unchanged.
func (c *HashCache) lookup(rel string, s stamp) (string, bool) {
	if c == nil {
		return "", false
	}
	h, ok := c.old[rel]
	if !ok || h.stamp != s {
		return "", false
	}
	c.new[rel] = h
	c.Hits++
	return h.SHA256, true
}

// store records the digest of rel, hashed after it was stamped s, unless
// the stamp is too recent to trust (RacyWindow).
func (c *HashCache) store(rel string, s stamp, sha string) {
	if c == nil {
		return
	}
	limit := c.nowFunc().Add(-RacyWindow).UnixNano()
	if s.Mtime >= limit || s.Ctime >= limit {
		return
	}
	c.new[rel] = cachedHash{stamp: s, SHA256: sha}
}

// Save writes the entries met since Open (files gone from the tree are
// dropped), atomically.
func (c *HashCache) Save() error {
	if c == nil {
		return nil
	}
	abs := filepath.Dir(c.path)
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(cacheFile{Version: 1, Root: c.root, Files: c.new})
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(abs, ".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), c.path)
}
