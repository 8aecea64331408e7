// Package metrics holds a server's Prometheus metrics and serves them in
// the Prometheus text format (github.com/VictoriaMetrics/metrics: no
// protobuf, so the quickstart's first build stays short).
//
// A nil *Metrics records nothing, so packages take one without checks.
package metrics

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
)

func init() { vm.ExposeMetadata(true) } // # TYPE lines, so counters are counters

// Metrics is one server's metrics. Safe for concurrent use.
type Metrics struct {
	set *vm.Set
}

// New returns an empty set of metrics.
func New() *Metrics { return &Metrics{set: vm.NewSet()} }

// Handler answers GET /metrics: the server's metrics, then the Go runtime's
// and the process's (go_*, process_*).
func (m *Metrics) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		if r.Method == http.MethodHead {
			return
		}
		if m != nil {
			m.set.WritePrometheus(w)
		}
		vm.WriteProcessMetrics(w)
	})
}

// Inc adds one to the counter name (with its labels, as in
// `cairn_publish_total{result="ok"}`).
func (m *Metrics) Inc(name string) {
	if m != nil {
		m.set.GetOrCreateCounter(name).Inc()
	}
}

// Add adds n to the counter name.
func (m *Metrics) Add(name string, n int64) {
	if m != nil && n > 0 {
		m.set.GetOrCreateCounter(name).AddInt64(n)
	}
}

// Since records the seconds since start in the histogram name (buckets
// from 5 ms to 10 s).
func (m *Metrics) Since(name string, start time.Time) {
	if m != nil {
		m.set.GetOrCreatePrometheusHistogram(name).UpdateDuration(start)
	}
}

// Gauge reports f() as the gauge name at every scrape.
func (m *Metrics) Gauge(name string, f func() float64) {
	if m != nil {
		m.set.GetOrCreateGauge(name, f)
	}
}

// Counters reports counters read at every scrape: f returns their values
// by name (with labels). For counts kept elsewhere, such as a cache's.
func (m *Metrics) Counters(f func() map[string]uint64) {
	if m == nil {
		return
	}
	m.set.RegisterMetricsWriter(func(w io.Writer) {
		vals := f()
		names := slices.Collect(maps.Keys(vals))
		slices.SortFunc(names, func(a, b string) int {
			return cmp.Or(strings.Compare(family(a), family(b)), strings.Compare(a, b))
		})
		for i, name := range names {
			// One # TYPE line per family, before its samples: the text
			// format allows no more.
			if i == 0 || family(names[i-1]) != family(name) {
				vm.WriteMetadataIfNeeded(w, family(name), "counter")
			}
			fmt.Fprintf(w, "%s %d\n", name, vals[name])
		}
	})
}

// family is a sample's metric name without its labels.
func family(name string) string {
	if i := strings.IndexByte(name, '{'); i >= 0 {
		return name[:i]
	}
	return name
}
