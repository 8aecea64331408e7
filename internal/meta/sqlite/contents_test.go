package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/meta/metatest"
)

func TestContents(t *testing.T) {
	metatest.RunContents(t, func(t *testing.T) meta.Store {
		return open(t, filepath.Join(t.TempDir(), "meta.db"))
	})
}
