package metrics

import (
	"net/http"
	"time"

	vm "github.com/VictoriaMetrics/metrics"

	"github.com/cairnhq/cairn/internal/httplog"
)

// HTTP counts the requests h answers on the listener named listener ("api",
// "edge") by status class, their response bytes, and their durations:
//
//	cairn_http_requests_total{listener="edge",code="2xx"}
//	cairn_http_response_bytes_total{listener="edge"}
//	cairn_http_request_duration_seconds{listener="edge"} (histogram)
//
// A request the client drops before an answer counts as 499 ("4xx"); one
// whose handler panics (net/http's http.ErrAbortHandler included: the
// client gets a cut response) as 500 ("5xx"). The panic goes on as it was.
func (m *Metrics) HTTP(listener string, h http.Handler) http.Handler {
	if m == nil {
		return h
	}
	var codes [6]*vm.Counter
	for c := 1; c <= 5; c++ {
		codes[c] = m.set.GetOrCreateCounter(`cairn_http_requests_total{listener="` + listener + `",code="` + string(rune('0'+c)) + `xx"}`)
	}
	bytes := m.set.GetOrCreateCounter(`cairn_http_response_bytes_total{listener="` + listener + `"}`)
	took := m.set.GetOrCreatePrometheusHistogram(`cairn_http_request_duration_seconds{listener="` + listener + `"}`)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &httplog.Recorder{ResponseWriter: w}
		returned := false
		defer func() {
			code := rec.Status(r)
			if !returned { // panicking; not recovered, so its stack stays whole
				code = http.StatusInternalServerError
			}
			codes[min(max(code/100, 1), 5)].Inc()
			bytes.AddInt64(rec.Bytes)
			took.UpdateDuration(start)
		}()
		h.ServeHTTP(rec, r)
		returned = true
	})
}
