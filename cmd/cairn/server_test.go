package main

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/server"
)

// runServerCmd runs `cairn args…` with server.Run replaced by a recorder.
func runServerCmd(t *testing.T, env map[string]string, args ...string) (*server.Config, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	a := newApp(&out, &errb, func(k string) string { return env[k] })
	var got *server.Config
	a.runServer = func(ctx context.Context, cfg server.Config) error {
		got = &cfg
		return nil
	}
	code := a.run(context.Background(), args)
	return got, errb.String(), code
}

// envToken is an admin token of the accepted length (32 characters or more).
const envToken = "envtok-0123456789abcdef0123456789"

func TestServerFlagsAndEnv(t *testing.T) {
	env := map[string]string{
		"CAIRN_DATA":         "/env/data",
		"CAIRN_API_ADDR":     "0.0.0.0:9000",
		"CAIRN_EDGE_ADDR":    "0.0.0.0:9001",
		"CAIRN_ROLES":        "edge",
		"CAIRN_TOKEN":        envToken,
		"CAIRN_BASE_DOMAIN":  "example.test",
		"CAIRN_MAX_BYTES":    "1GiB",
		"CAIRN_DATABASE":     "postgres://db/cairn",
		"CAIRN_BLOBS":        "s3://bucket?endpoint=x",
		"CAIRN_MAX_PACKS":    "3",
		"CAIRN_METRICS_ADDR": "127.0.0.1:9100",
		"CAIRN_PREVIEW_IDLE": "2m",

		"CAIRN_METRICS_TOKEN_REQUIRED": "true",
	}
	cfg, stderr, code := runServerCmd(t, env, "--data", "/flag/data", "server", "--edge-addr", ":7",
		"--max-files", "5", "--cache-bytes", "10MB")
	if code != 0 || cfg == nil {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := server.Default()
	want.DataDir, want.APIAddr, want.EdgeAddr = "/flag/data", "0.0.0.0:9000", ":7"
	want.Roles, want.Token, want.BaseDomain = []string{"edge"}, envToken, "example.test"
	want.MaxFiles, want.MaxBytes, want.CacheBytes, want.MaxPacks = 5, 1<<30, 10_000_000, 3
	want.MetricsAddr, want.MetricsToken = "127.0.0.1:9100", true
	want.Database, want.Blobs = "postgres://db/cairn", "s3://bucket?endpoint=x"
	want.PreviewIdle = 2 * time.Minute
	if cfg.Logger == nil {
		t.Error("no logger")
	}
	cfg.Logger = nil
	if !reflect.DeepEqual(*cfg, want) {
		t.Errorf("config\n%+v\nwant\n%+v", *cfg, want)
	}
}

func TestServerDefaults(t *testing.T) {
	cfg, stderr, code := runServerCmd(t, nil, "server", "--roles", "api, edge, gc, sched")
	if code != 0 || cfg == nil {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	d := server.Default()
	if cfg.DataDir != d.DataDir || cfg.APIAddr != d.APIAddr || !slices.Equal(cfg.Roles, d.Roles) || cfg.MaxBytes != d.MaxBytes {
		t.Errorf("config %+v", cfg)
	}
}

func TestServerBadValues(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{"CAIRN_MAX_FILES": "many"}, nil, `cairn: CAIRN_MAX_FILES: invalid value "many" for --max-files`},
		{map[string]string{"CAIRN_MAX_BYTES": "lots"}, nil, `cairn: CAIRN_MAX_BYTES: invalid value "lots" for --max-bytes`},
		{map[string]string{"CAIRN_LOG_FORMAT": "xml"}, nil, `cairn: CAIRN_LOG_FORMAT: invalid value "xml"`},
		{map[string]string{"CAIRN_ROLES": "api,sched,router"}, nil, `cairn: --roles: unknown role "router" (known: api, edge, gc, sched) (set by CAIRN_ROLES)`},
		{map[string]string{"CAIRN_GC_GRACE": "soon"}, nil, `cairn: CAIRN_GC_GRACE: invalid value "soon" for --gc-grace`},
		{nil, []string{"--retention-days", "-1"}, `cairn: --retention-days: -1 is not between 0 and 3650`},
		{nil, []string{"--roles", "web"}, `cairn: --roles: unknown role "web"`},
		{nil, []string{"--max-files", "0"}, `cairn: --max-files and --max-bytes: must be positive`},
		{nil, []string{"--max-packs", "0"}, `cairn: --max-packs: must be at least 1`},
		{map[string]string{"CAIRN_MAX_PACKS": "two"}, nil, `cairn: CAIRN_MAX_PACKS: invalid value "two" for --max-packs`},
		{nil, []string{"--token", "short"}, `cairn: --token (CAIRN_TOKEN): the admin token has 5 characters; it needs at least 32`},
		{map[string]string{"CAIRN_TOKEN": "0123456789abcdef0123456789abcde"}, nil,
			`cairn: --token (CAIRN_TOKEN): the admin token has 31 characters; it needs at least 32`},
		{nil, []string{"--max-conns", "-1"}, `cairn: --max-conns: -1 is not between 0 (auto) and 1048576`},
		{nil, []string{"--max-conns", "1048576"}, `cairn: --max-conns: 1048576 connections on each of 2 listeners need about`},
		{map[string]string{"CAIRN_MAX_CONNS": "lots"}, nil, `cairn: CAIRN_MAX_CONNS: invalid value "lots" for --max-conns`},
		{nil, []string{"--body-timeout", "0s"}, `cairn: --body-timeout: 0s is not between 0 and 1h`},
		{map[string]string{"CAIRN_HEADER_TIMEOUT": "2h"}, nil, `cairn: --header-timeout: 2h0m0s is not between 0 and 1h (set by CAIRN_HEADER_TIMEOUT)`},
		{nil, []string{"--max-uploads", "0"}, `cairn: --max-uploads: 0 is not between 1 and 100000`},
		{nil, []string{"--idle-timeout", "forever"}, `cairn: invalid argument "forever" for "--idle-timeout"`},
		{nil, []string{"--preview-idle", "-1s"}, `cairn: --preview-idle: must not be negative`},
	} {
		cfg, stderr, code := runServerCmd(t, tc.env, append([]string{"server"}, tc.args...)...)
		if code != 1 || cfg != nil || !strings.HasPrefix(stderr, tc.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v %v: exit %d, ran %v, stderr %q; want %q", tc.env, tc.args, code, cfg != nil, stderr, tc.want)
		}
	}
}

func TestServerStoppedBySignal(t *testing.T) {
	var errb bytes.Buffer
	a := newApp(&bytes.Buffer{}, &errb, func(string) string { return "" })
	a.runServer = func(ctx context.Context, _ server.Config) error {
		<-ctx.Done()
		return ctx.Err()
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if code := a.run(ctx, []string{"server"}); code != 0 {
		t.Errorf("exit %d: %s", code, errb.String())
	}
	a.runServer = func(context.Context, server.Config) error { return errors.New("listen tcp: address in use") }
	if code := a.run(context.Background(), []string{"server"}); code != 1 {
		t.Errorf("failed Run: exit %d", code)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1048576": 1 << 20, "512MiB": 512 << 20, "10GB": 10e9, "4 kB": 4000, "7b": 7} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1.5GB", "GB", "9999999TiB"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) succeeded", in)
		}
	}
}

// TestServerBanner: at a terminal, once the listeners are bound, the
// server says where the API and the edge are, where the token is and what
// to run next; not at all with --json or without a terminal.
func TestServerBanner(t *testing.T) {
	for _, c := range []struct {
		tty, json bool
		want      bool
	}{{true, false, true}, {false, false, false}, {true, true, false}} {
		var errb bytes.Buffer
		a := newApp(&bytes.Buffer{}, &errb, func(string) string { return "" })
		a.stderrTTY = c.tty
		a.runServer = func(ctx context.Context, cfg server.Config) error {
			if cfg.Ready != nil {
				cfg.Ready("127.0.0.1:7800", "127.0.0.1:7880")
			}
			return nil
		}
		args := []string{"server", "--data", "/d"}
		if c.json {
			args = append(args, "--json")
		}
		if code := a.run(context.Background(), args); code != 0 {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
		got := errb.String()
		has := strings.Contains(got, "cairn is up (data /d)") && strings.Contains(got, "http://127.0.0.1:7800") &&
			strings.Contains(got, "token in /d/token") && strings.Contains(got, "http://NAME.localhost:7880/") &&
			strings.Contains(got, "next: cairn publish ./site --deployment demo")
		if has != c.want {
			t.Errorf("tty %v json %v: banner %v, want %v:\n%s", c.tty, c.json, has, c.want, got)
		}
	}
}
