package router

import (
	"sync/atomic"

	"github.com/cairnhq/cairn/internal/metrics"
)

// counts are the router's counters (see Observe).
type counts struct {
	proxied, noInstance, unreachable, retries, held atomic.Uint64
}

// Observe reports the router in m at every scrape:
//
//	cairn_router_requests_total{result="proxied|no_instance|unreachable"}
//	cairn_router_retries_total   attempts sent to another instance
//	cairn_router_held_total      requests that waited for a starting instance
//	cairn_router_wakes_total     wakes sent for versions with no instance (scale to zero)
//	cairn_router_instances       healthy instances in the table (gauge)
func (rt *Router) Observe(m *metrics.Metrics) {
	m.Gauge("cairn_router_instances", func() float64 {
		if t := rt.table.Load(); t != nil {
			return float64(len(t.all))
		}
		return 0
	})
	m.Counters(func() map[string]uint64 {
		c := &rt.counts
		return map[string]uint64{
			`cairn_router_requests_total{result="proxied"}`:     c.proxied.Load(),
			`cairn_router_requests_total{result="no_instance"}`: c.noInstance.Load(),
			`cairn_router_requests_total{result="unreachable"}`: c.unreachable.Load(),
			`cairn_router_retries_total`:                        c.retries.Load(),
			`cairn_router_held_total`:                           c.held.Load(),
			`cairn_router_wakes_total`:                          rt.wakes.woken.Load(),
		}
	})
}
