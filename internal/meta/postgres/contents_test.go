package postgres_test

import (
	"testing"

	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/meta/metatest"
)

func TestContents(t *testing.T) {
	admin(t) // skip once, not in every subtest
	metatest.RunContents(t, func(t *testing.T) meta.Store {
		u, _ := freshSchema(t)
		return open(t, u)
	})
}
