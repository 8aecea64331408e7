package metrics

import (
	"io"
	"net/http"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
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
		rec := &recorder{ResponseWriter: w}
		returned := false
		defer func() {
			code := rec.code
			switch {
			case !returned: // panicking; not recovered, so its stack stays whole
				code = http.StatusInternalServerError
			case code == 0:
				code = http.StatusOK // nothing written: net/http sends 200
				if r.Context().Err() != nil {
					code = 499
				}
			}
			codes[min(max(code/100, 1), 5)].Inc()
			bytes.AddInt64(rec.bytes)
			took.UpdateDuration(start)
		}()
		h.ServeHTTP(rec, r)
		returned = true
	})
}

// recorder notes the status and counts the body bytes of a response. It
// passes Flush and ReadFrom (sendfile) through, and Unwrap gives the
// original to http.ResponseController.
type recorder struct {
	http.ResponseWriter
	code  int
	bytes int64
}

// started notes a 200 when the body starts without an explicit status.
func (r *recorder) started() {
	if r.code == 0 {
		r.code = http.StatusOK
	}
}

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 && code >= 200 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.started()
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	r.started()
	var n int64
	var err error
	if rf, ok := r.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(r.ResponseWriter, src)
	}
	r.bytes += n
	return n, err
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		r.started()
		f.Flush()
	}
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
