package publish

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/cairnhq/cairn/internal/meta"
)

// DefaultPort is a dynamic version's port when none is given.
const DefaultPort = 8080

// Defaults of a health check with a path.
const (
	DefaultHealthInterval = 10 * time.Second
	DefaultHealthTimeout  = 2 * time.Second
)

// maxRuntimeJSON bounds the runtime object of one version.
const maxRuntimeJSON = 64 << 10

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ParseRuntime decodes and checks the runtime settings of a dynamic version
// (the "runtime" query parameter of an upload, a JSON object: cmd, env,
// workdir, user, port, health_check) and fills in the defaults: port 8080,
// health check interval 10s and timeout 2s. Empty input gives the
// defaults. Errors are ErrBadRuntime refusals that name the field.
func ParseRuntime(js []byte) (*meta.Runtime, error) {
	rt := &meta.Runtime{}
	if len(bytes.TrimSpace(js)) > 0 {
		if len(js) > maxRuntimeJSON {
			return nil, badRuntime("over %d bytes", maxRuntimeJSON)
		}
		d := json.NewDecoder(bytes.NewReader(js))
		d.DisallowUnknownFields()
		if err := d.Decode(rt); err != nil {
			return nil, badRuntime("not a runtime object: %v", err)
		}
		if d.More() {
			return nil, badRuntime("data after the object")
		}
	}
	if err := checkRuntime(rt); err != nil {
		return nil, err
	}
	return rt, nil
}

func badRuntime(format string, a ...any) error {
	return refuse(ErrBadRuntime, "runtime: "+format, a...)
}

// plainText reports whether s holds no control character and is valid text.
func plainText(s string) bool {
	for _, r := range s {
		if r == unicode.ReplacementChar || unicode.IsControl(r) {
			return false
		}
	}
	return true
}

func checkRuntime(rt *meta.Runtime) error {
	for i, w := range rt.Cmd {
		if strings.ContainsRune(w, 0) || (i == 0 && w == "") {
			return badRuntime("cmd word %d is empty or holds a NUL", i)
		}
	}
	if rt.Cmd == nil {
		rt.Cmd = []string{}
	}
	for k, v := range rt.Env {
		if !envName.MatchString(k) {
			return badRuntime("env name %q is not a valid variable name", k)
		}
		if strings.ContainsRune(v, 0) {
			return badRuntime("env %s holds a NUL", k)
		}
		if k == "PORT" {
			return badRuntime("env PORT is set from port")
		}
	}
	if rt.Workdir != "" && (!strings.HasPrefix(rt.Workdir, "/") || !plainText(rt.Workdir)) {
		return badRuntime("workdir %q must be an absolute path", rt.Workdir)
	}
	if !plainText(rt.User) || strings.ContainsAny(rt.User, " /") {
		return badRuntime("user %q must be a name, a uid or uid:gid", rt.User)
	}
	switch {
	case rt.Port == 0:
		rt.Port = DefaultPort
	case rt.Port < 1 || rt.Port > 65535:
		return badRuntime("port %d is not from 1 to 65535", rt.Port)
	}
	if h := rt.HealthCheck; h != nil {
		if !strings.HasPrefix(h.Path, "/") || !plainText(h.Path) || strings.ContainsAny(h.Path, " #") {
			return badRuntime("health_check path %q must be an absolute URL path", h.Path)
		}
		iv, err := duration(h.Interval, DefaultHealthInterval, "interval")
		if err != nil {
			return err
		}
		to, err := duration(h.Timeout, DefaultHealthTimeout, "timeout")
		if err != nil {
			return err
		}
		if to > iv {
			return badRuntime("health_check timeout %v is longer than its interval %v", to, iv)
		}
		h.Interval, h.Timeout = iv.String(), to.String()
	}
	return nil
}

func duration(s string, def time.Duration, field string) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 100*time.Millisecond || d > time.Hour {
		return 0, badRuntime("health_check %s %q must be a duration from 100ms to 1h", field, s)
	}
	return d, nil
}
