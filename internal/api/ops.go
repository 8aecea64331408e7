package api

import (
	"log/slog"
	"net/http"

	"github.com/cairnhq/cairn/internal/httplog"
	"github.com/cairnhq/cairn/internal/token"
)

// ops names the routes that change something; each success is logged as
// one line at info level, with the acting token (operators' log; the audit
// log is the record).
var ops = map[string]string{
	"POST /v1/deployments":                                    "deployment.create",
	"PATCH /v1/deployments/{dep}":                             "deployment.update",
	"DELETE /v1/deployments/{dep}":                            "deployment.delete",
	"POST /v1/deployments/{dep}/versions":                     "publish",
	"POST /v1/deployments/{dep}/publishes":                    "publish.start",
	"PUT /v1/deployments/{dep}/publishes/{id}/contents/{sha}": "publish.content",
	"POST /v1/deployments/{dep}/publishes/{id}/commit":        "publish.commit",
	"DELETE /v1/deployments/{dep}/publishes/{id}":             "publish.abandon",
	"POST /v1/deployments/{dep}/activate":                     "activate",
	"POST /v1/deployments/{dep}/rollback":                     "rollback",
	"POST /v1/domains":                                        "domain.add",
	"PATCH /v1/domains/{hostname}":                            "domain.repoint",
	"DELETE /v1/domains/{hostname}":                           "domain.remove",
	"POST /v1/gc":                                             "gc",
	"POST /v1/tokens":                                         "token.create",
	"DELETE /v1/tokens/{id}":                                  "token.revoke",
	"POST /v1/hosts":                                          "host.register",
	"POST /v1/hosts/{id}/heartbeat":                           "host.heartbeat",
	"POST /v1/hosts/{id}/drain":                               "host.drain",
	"PUT /v1/deployments/{dep}/sources/{sha}":                 "source.put",
	"POST /v1/deployments/{dep}/builds":                       "build.create",
	"POST /v1/deployments/{dep}/versions/{n}/rebuild":         "rebuild",
	"POST /v1/deployments/{dep}/versions/{n}/restore":         "restore",
	"POST /v1/hosts/{id}/builds/claim":                        "build.claim",
	"POST /v1/hosts/{id}/builds/{bid}/result":                 "build.result",
}

// logOp logs a successful operation of route pattern, if it is one.
func (a *API) logOp(pattern string, r *http.Request, p *token.Principal) {
	op, ok := ops[pattern]
	if !ok {
		return
	}
	attrs := []slog.Attr{slog.String("op", op), slog.String("token", p.ID),
		slog.String("request_id", httplog.RequestID(r.Context()))}
	for _, k := range []string{"dep", "hostname", "id"} {
		if v := r.PathValue(k); v != "" {
			attrs = append(attrs, slog.String(k, v))
		}
	}
	level := slog.LevelInfo
	if op == "host.heartbeat" || op == "build.claim" { // every host, every 2 s; every idle host, every 30 s
		level = slog.LevelDebug
	}
	a.log.LogAttrs(r.Context(), level, "api: "+op, attrs...)
}
