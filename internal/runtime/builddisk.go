package runtime

import (
	"context"
	"io/fs"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// DefaultBuildDiskBytes bounds what a build writes to its root when
// hostapi.Build.DiskBytes is 0.
const DefaultBuildDiskBytes int64 = 10 << 30

// diskInterval is how often a build's upper layer is measured while it
// runs, at the least: a walk that takes d waits 10·d before the next, so
// a tree of many files costs a tenth of a core at most.
const diskInterval = 500 * time.Millisecond

// watchDisk measures the upper layer of build id while it runs and kills
// the build once it holds more than limit bytes. stop ends the watch
// (idempotent) and says whether it killed the build. A build may write
// past the limit by what it writes between two looks.
func (r *Runtime) watchDisk(id, upper string, limit int64) (stop func() (killed bool)) {
	var over atomic.Bool
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		wait := diskInterval
		for {
			select {
			case <-quit:
				return
			case <-time.After(wait):
			}
			t0 := time.Now()
			if n := diskUsage(upper, limit); n > limit {
				over.Store(true)
				r.cfg.Log.Info("build over its disk limit: killed", "id", id, "limit", limit)
				r.cfg.Driver.Signal(context.Background(), id, syscall.SIGKILL)
				return
			}
			wait = max(diskInterval, 10*time.Since(t0))
		}
	}()
	var once sync.Once
	return func() bool {
		once.Do(func() { close(quit); <-done })
		return over.Load()
	}
}

// diskUsage is what the tree at dir holds on disk: each entry's size or
// its blocks, the larger (a sparse file counts its size, a small file
// its block), a file of several links once. It stops counting past
// stopAt. Entries that vanish while it walks are skipped.
func diskUsage(dir string, stopAt int64) int64 {
	var n int64
	seen := map[uint64]bool{} // inodes of several links
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // gone, or unreadable: the build's own business
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		size := fi.Size()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			if st.Nlink > 1 && !fi.IsDir() {
				if seen[st.Ino] {
					return nil
				}
				seen[st.Ino] = true
			}
			size = max(size, st.Blocks*512)
		}
		if n += size; n > stopAt {
			return filepath.SkipAll
		}
		return nil
	})
	return n
}
