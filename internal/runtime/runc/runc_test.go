package runc_test

import (
	"testing"

	cruntime "github.com/cairnhq/cairn/internal/runtime"
	"github.com/cairnhq/cairn/internal/runtime/drivertest"
	"github.com/cairnhq/cairn/internal/runtime/runc"
)

func TestConformance(t *testing.T) {
	drivertest.Run(t, func(t *testing.T, dir string) cruntime.Driver {
		d, err := runc.New(dir)
		if err != nil {
			t.Fatal(err)
		}
		return d
	})
}
