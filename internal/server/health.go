package server

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/cairnhq/cairn/internal/blob"
	"github.com/cairnhq/cairn/internal/meta"
)

// probeTimeout bounds each readiness check.
const probeTimeout = 2 * time.Second

// emptyDigest names a blob that need not exist: asking for it checks that
// the store answers.
var emptyDigest = digest.FromBytes(nil)

// mountHealth serves the probes of load balancers and orchestrators on mux:
//
//	GET /healthz  200 while the process serves (liveness)
//	GET /readyz   200 when the metadata database and the blob store answer
//	              within 2 s each, else 503; the body names each check's
//	              result ("ok", "unreachable"), the causes go to the log
func mountHealth(mux *http.ServeMux, store meta.Store, blobs blob.Store, log *slog.Logger) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeProbe(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		checks := map[string]string{}
		status, code := "ready", http.StatusOK
		check := func(name string, fn func(context.Context) error) {
			ctx, cancel := context.WithTimeout(r.Context(), probeTimeout)
			defer cancel()
			if err := fn(ctx); err != nil {
				log.Warn("readiness check failed", "check", name, "err", err)
				checks[name], status, code = "unreachable", "unready", http.StatusServiceUnavailable
				return
			}
			checks[name] = "ok"
		}
		check("database", store.Ping)
		check("blobs", func(ctx context.Context) error {
			_, err := blobs.Stat(ctx, emptyDigest)
			if errors.Is(err, blob.ErrNotFound) {
				return nil
			}
			return err
		})
		writeProbe(w, code, map[string]any{"status": status, "checks": checks})
	})
}

func writeProbe(w http.ResponseWriter, code int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	w.Write(b)
}
