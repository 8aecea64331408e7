// Package fakeclock is the clock of tests about time (retention, leases,
// expiry, timestamps): it moves only when told, or by a fixed step on every
// reading. It is safe for concurrent use.
package fakeclock

import (
	"sync"
	"time"
)

// Clock is a settable clock; its Now method value stands in for time.Now.
type Clock struct {
	mu   sync.Mutex
	now  time.Time
	step time.Duration
}

// New returns a clock frozen at t until Add moves it.
func New(t time.Time) *Clock { return &Clock{now: t} }

// Ticking returns a clock at t that advances by step after every reading.
func Ticking(t time.Time, step time.Duration) *Clock { return &Clock{now: t, step: step} }

// Now returns the clock's time (and then moves it by its step).
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.now
	c.now = c.now.Add(c.step)
	return t
}

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
