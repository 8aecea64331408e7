package httplog

import (
	"io"
	"net/http"
)

// Recorder notes the status and counts the body bytes of a response. It
// passes Flush and ReadFrom (sendfile) through, and Unwrap gives the
// original to http.ResponseController.
type Recorder struct {
	http.ResponseWriter
	Code  int   // the first final status written, 0 if none yet
	Bytes int64 // body bytes written
}

// Status is the status the client got: Code, or 200 when the handler
// wrote nothing (net/http sends 200), or 499 when it wrote nothing because
// the client had gone.
func (r *Recorder) Status(req *http.Request) int {
	if r.Code != 0 {
		return r.Code
	}
	if req.Context().Err() != nil {
		return 499
	}
	return http.StatusOK
}

// started notes a 200 when the body starts without an explicit status.
func (r *Recorder) started() {
	if r.Code == 0 {
		r.Code = http.StatusOK
	}
}

func (r *Recorder) WriteHeader(code int) {
	if r.Code == 0 && code >= 200 {
		r.Code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *Recorder) Write(b []byte) (int, error) {
	r.started()
	n, err := r.ResponseWriter.Write(b)
	r.Bytes += int64(n)
	return n, err
}

func (r *Recorder) ReadFrom(src io.Reader) (int64, error) {
	r.started()
	var n int64
	var err error
	if rf, ok := r.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(r.ResponseWriter, src)
	}
	r.Bytes += n
	return n, err
}

func (r *Recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		r.started()
		f.Flush()
	}
}

func (r *Recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
