package server

import (
	"context"
	"time"

	"github.com/cairnhq/cairn/internal/api"
)

// placeInterval is how often the placer role marks silent hosts lost and
// places instances (after activations, lost hosts); the API also places
// right after each change it makes.
const placeInterval = time.Second

func placeLoop(ctx context.Context, a *api.API, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.Place(ctx)
		}
	}
}
