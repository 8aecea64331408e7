package edge

import (
	"net/http"
)

// serveDynamic hands a request for a dynamic version to Config.Dynamic,
// after the custom domain's HTTPS redirect and HSTS, as for a static one.
// The connection stops holding writes (see Coalesce) once the response
// is flushed, so a streamed response reaches the client as it is made;
// a small response that is never flushed is still sent in one write.
func (e *Edge) serveDynamic(w http.ResponseWriter, r *http.Request, host string, rt *route) {
	if rt.httpsRedirect && r.TLS == nil {
		e.toHTTPS(w, r, host)
		return
	}
	if rt.hsts && r.TLS != nil {
		w.Header()["Strict-Transport-Security"] = hstsHdr
	}
	if cc, ok := r.Context().Value(connKey{}).(*coalescedConn); ok {
		w = &flushThrough{ResponseWriter: w, cc: cc}
	}
	e.dyn.ServeVersion(w, r, rt.depID, rt.dynamic, rt.active)
}

// flushThrough makes a Flush reach the client through a coalescing
// connection: the rest of the response goes straight out.
type flushThrough struct {
	http.ResponseWriter
	cc *coalescedConn
}

func (f *flushThrough) Flush() {
	if fl, ok := f.ResponseWriter.(http.Flusher); ok {
		fl.Flush()
	} else {
		http.NewResponseController(f.ResponseWriter).Flush()
	}
	f.cc.writeThrough(true)
}

// Unwrap lets http.ResponseController reach the connection (hijack,
// deadlines).
func (f *flushThrough) Unwrap() http.ResponseWriter { return f.ResponseWriter }
