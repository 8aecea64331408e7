package registry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// stage keeps upload sessions on local disk, two files per session:
//
//	DIR/<id>.json  the session: repository, start and last activity
//	DIR/<id>.data  the bytes received so far
//
// Operations on one session are serialised by a striped lock. A session idle
// for longer than ttl is unknown to open and removed by sweep.
type stage struct {
	dir   string
	ttl   time.Duration
	now   func() time.Time
	locks [64]sync.Mutex
}

// session is the .json file.
type session struct {
	ID      string    `json:"-"`
	Repo    string    `json:"repository"`
	Started time.Time `json:"started"`
	Updated time.Time `json:"updated"`
	Size    int64     `json:"-"` // of the .data file
}

func newStage(dir string, ttl time.Duration, now func() time.Time) (*stage, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("staging directory: %w", err)
	}
	return &stage{dir: dir, ttl: ttl, now: now}, nil
}

func (s *stage) path(id, ext string) string { return filepath.Join(s.dir, id+ext) }

// lock locks the session id and returns its unlock.
func (s *stage) lock(id string) func() {
	h := fnv.New32a()
	h.Write([]byte(id))
	m := &s.locks[h.Sum32()%uint32(len(s.locks))]
	m.Lock()
	return m.Unlock
}

// create starts an empty session for repo.
func (s *stage) create(repo string) (*session, error) {
	b := make([]byte, 16)
	rand.Read(b)
	now := s.now()
	ss := &session{ID: hex.EncodeToString(b), Repo: repo, Started: now, Updated: now}
	f, err := os.OpenFile(s.path(ss.ID, ".data"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	if err := s.save(ss); err != nil {
		s.remove(ss.ID)
		return nil, err
	}
	return ss, nil
}

// open loads session id of repo; the caller holds its lock. A missing,
// expired or foreign session wraps errUploadUnknown.
func (s *stage) open(id, repo string) (*session, error) {
	unknown := public(errUploadUnknown, "upload %.80q", id)
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		return nil, unknown
	}
	b, err := os.ReadFile(s.path(id, ".json"))
	if errors.Is(err, iofs.ErrNotExist) {
		return nil, unknown
	}
	if err != nil {
		return nil, err
	}
	ss := &session{ID: id}
	if err := json.Unmarshal(b, ss); err != nil {
		return nil, fmt.Errorf("upload session %s: %w", id, err)
	}
	if ss.Repo != repo || s.expired(ss) {
		return nil, unknown
	}
	fi, err := os.Stat(s.path(id, ".data"))
	if errors.Is(err, iofs.ErrNotExist) {
		return nil, unknown
	}
	if err != nil {
		return nil, err
	}
	ss.Size = fi.Size()
	return ss, nil
}

func (s *stage) expired(ss *session) bool {
	return s.now().Sub(ss.Updated) > s.ttl
}

// save writes the session file atomically.
func (s *stage) save(ss *session) error {
	b, err := json.Marshal(ss)
	if err != nil {
		return err
	}
	tmp := s.path(ss.ID, ".json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, s.path(ss.ID, ".json"))
}

// appendFrom appends what r yields to the session, at most limit bytes:
// more wraps errBlobTooLarge. On any error the data is cut back to its size
// before the call, so a failed chunk leaves no trace. It returns the number
// of bytes appended and refreshes the session's activity time.
func (s *stage) appendFrom(ss *session, r io.Reader, limit int64) (int64, error) {
	f, err := os.OpenFile(s.path(ss.ID, ".data"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, newLimitReader(r, limit))
	if err != nil {
		err = errors.Join(err, f.Truncate(ss.Size))
		f.Close()
		return 0, err
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	ss.Size += n
	ss.Updated = s.now()
	return n, s.save(ss)
}

// truncate cuts the session's data back to size (a rejected chunk).
func (s *stage) truncate(ss *session, size int64) error {
	ss.Size = size
	return os.Truncate(s.path(ss.ID, ".data"), size)
}

// data opens the session's bytes; the caller closes the file.
func (s *stage) data(ss *session) (*os.File, error) {
	return os.Open(s.path(ss.ID, ".data"))
}

// remove deletes a session's files.
func (s *stage) remove(id string) error {
	var errs []error
	for _, ext := range []string{".json", ".data", ".json.tmp"} {
		if err := os.Remove(s.path(id, ext)); err != nil && !errors.Is(err, iofs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// sweep removes expired sessions, and files without a session once they are
// older than the ttl, and returns the number of sessions removed.
func (s *stage) sweep(ctx context.Context) (int, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return 0, err
	}
	removed := 0
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		id, ext, _ := strings.Cut(e.Name(), ".")
		unlock := s.lock(id)
		var ss session
		b, err := os.ReadFile(s.path(id, ".json"))
		switch {
		case err == nil && json.Unmarshal(b, &ss) == nil:
			if ext == "json" && s.expired(&ss) {
				err = s.remove(id)
				removed++
			} else {
				err = nil
			}
		case errors.Is(err, iofs.ErrNotExist) || err == nil:
			err = s.removeOrphan(e)
		}
		unlock()
		if err != nil {
			return removed, err
		}
	}
	return removed, nil
}

// removeOrphan removes a file that belongs to no readable session once it
// is older than the ttl (younger ones may be a session being created).
func (s *stage) removeOrphan(e os.DirEntry) error {
	info, err := e.Info()
	if errors.Is(err, iofs.ErrNotExist) {
		return nil
	}
	if err != nil || s.now().Sub(info.ModTime()) <= s.ttl {
		return err
	}
	err = os.RemoveAll(filepath.Join(s.dir, e.Name()))
	if errors.Is(err, iofs.ErrNotExist) {
		return nil
	}
	return err
}

// limitReader yields at most limit bytes of r; one more wraps errBlobTooLarge.
type limitReader struct {
	r           io.Reader
	limit, left int64
}

func newLimitReader(r io.Reader, limit int64) *limitReader {
	return &limitReader{r: r, limit: limit, left: limit}
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, public(errBlobTooLarge, "the blob exceeds the size limit")
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return n, public(errBlobTooLarge, "the blob exceeds the size limit")
	}
	return n, err
}

// read is the number of bytes the reader yielded.
func (l *limitReader) read() int64 { return l.limit - l.left }
