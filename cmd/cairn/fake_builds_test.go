package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
)

// fakeBuilds adds to the fake API the routes of docs/design.md, "Sources,
// builds and rebuilds". A build moves one state per GET (queued, running,
// then its end): a command containing "false" fails, "sleep" never ends.
// Rebuilds of demo v2 are reproducible, of v3 differ; a restore of v1
// succeeds, of v2 fails.
func fakeBuilds(mux *http.ServeMux) {
	var (
		mu      sync.Mutex
		sources = map[string]bool{}
		builds  []map[string]any // newest last
		polls   = map[string]int{}
	)
	reply := func(w http.ResponseWriter, status int, v any) {
		ct := "application/json"
		if status >= 400 {
			ct = "application/problem+json"
		}
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	problem := func(w http.ResponseWriter, status int, detail string) {
		reply(w, status, map[string]any{"type": "https://cairn.dev/problems/x", "title": http.StatusText(status), "status": status, "detail": detail})
	}
	find := func(id string) map[string]any {
		for _, b := range builds {
			if b["id"] == id {
				return b
			}
		}
		return nil
	}
	newBuild := func(dep, kind string, n int64, spec map[string]any) map[string]any {
		b := map[string]any{"id": fmt.Sprintf("bld_%d", len(builds)+1), "deployment": "dep_1", "kind": kind, "state": "queued",
			"source_sha256": spec["source_sha256"], "builder": strings.Repeat("be", 32), "builder_ref": spec["builder"],
			"command": spec["command"], "output": spec["output"], "env": spec["env"], "source_date_epoch": 1714564800,
			"timeout": "10m0s", "memory_bytes": 1 << 30, "activate": spec["activate"], "actor": "tok_admin",
			"created_at": "2024-05-01T12:00:00Z", "started_at": nil, "finished_at": nil, "duration_ms": 0, "exit_code": nil, "log_bytes": 0}
		if e, ok := spec["source_date_epoch"]; ok {
			b["source_date_epoch"] = e
		}
		if spec["network"] == true {
			b["network"] = true
		}
		if n > 0 {
			b["version_number"] = n
		}
		if h, _ := spec["host"].(string); h != "" {
			b["pin_host"] = h
		}
		builds = append(builds, b)
		return b
	}
	mux.HandleFunc("GET /v1/deployments/{dep}/sources/{sha}", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if !sources[r.PathValue("sha")] {
			problem(w, 404, "source "+r.PathValue("sha")+" not found")
			return
		}
		reply(w, 200, map[string]any{"sha256": r.PathValue("sha"), "kind": "source"})
	})
	mux.HandleFunc("PUT /v1/deployments/{dep}/sources/{sha}", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		sum := sha256.Sum256(b)
		if hex.EncodeToString(sum[:]) != r.PathValue("sha") || r.ContentLength != int64(len(b)) {
			problem(w, 422, "release-mismatch")
			return
		}
		mu.Lock()
		sources[r.PathValue("sha")] = true
		mu.Unlock()
		reply(w, 201, map[string]any{"sha256": r.PathValue("sha"), "kind": "source", "size_bytes": len(b)})
	})
	mux.HandleFunc("POST /v1/deployments/{dep}/builds", func(w http.ResponseWriter, r *http.Request) {
		var spec map[string]any
		if err := json.NewDecoder(r.Body).Decode(&spec); err != nil {
			problem(w, 400, err.Error())
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if !sources[fmt.Sprint(spec["source_sha256"])] {
			problem(w, 400, "source_sha256 names no stored snapshot")
			return
		}
		if r.PathValue("dep") != "demo" && spec["create"] != true {
			problem(w, 404, `deployment "`+r.PathValue("dep")+`" not found`)
			return
		}
		w.Header().Set("Location", "/v1/builds/bld_x")
		reply(w, 202, newBuild(r.PathValue("dep"), "build", 0, spec))
	})
	mux.HandleFunc("GET /v1/builds/{id}", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		b := find(r.PathValue("id"))
		if b == nil {
			problem(w, 404, "build "+r.PathValue("id")+" not found")
			return
		}
		polls[b["id"].(string)]++
		cmd, _ := b["command"].(string)
		switch p := polls[b["id"].(string)]; {
		case strings.Contains(cmd, "sleep") || p == 1:
			b["state"], b["host"], b["started_at"] = "running", "h1", "2024-05-01T12:00:01Z"
			if h, ok := b["pin_host"]; ok {
				b["host"] = h
			}
		case p == 2:
			b["finished_at"], b["duration_ms"], b["log_bytes"] = "2024-05-01T12:00:05Z", 4200, 120
			b["log_sha256"] = strings.Repeat("10", 32)
			fail := strings.Contains(cmd, "false") || b["kind"] == "restore" && b["version_number"] == int64(2)
			switch {
			case fail:
				b["state"], b["exit_code"] = "failed", 1
				b["error"] = "the command exited 1"
			default:
				b["state"], b["exit_code"] = "succeeded", 0
				b["artifact_sha256"] = strings.Repeat("ab12cd34ef56", 5) + "ab12"
			}
			if b["kind"] == "build" && !fail {
				b["version_number"] = 4
			}
			if b["kind"] == "rebuild" {
				b["verdict"] = "reproducible"
				if b["version_number"] == int64(3) {
					b["verdict"], b["differs"] = "differs", []string{"build-time.txt", "index.html"}
					b["artifact_sha256"] = strings.Repeat("ff", 32)
				}
			}
		}
		reply(w, 200, b)
	})
	mux.HandleFunc("GET /v1/builds/{id}/log", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		for i := 1; i <= 25; i++ {
			fmt.Fprintf(w, "step %d\n", i)
		}
		io.WriteString(w, "sh: false: exited 1\n")
	})
	mux.HandleFunc("GET /v1/deployments/{dep}/builds", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		list := []map[string]any{}
		for i := len(builds) - 1; i >= 0; i-- {
			list = append(list, builds[i])
		}
		reply(w, 200, map[string]any{"builds": list})
	})
	for _, action := range []string{"rebuild", "restore"} {
		mux.HandleFunc("POST /v1/deployments/{dep}/versions/{n}/"+action, func(w http.ResponseWriter, r *http.Request) {
			var in map[string]any
			json.NewDecoder(r.Body).Decode(&in)
			var n int64
			fmt.Sscan(r.PathValue("n"), &n)
			mu.Lock()
			defer mu.Unlock()
			spec := map[string]any{"source_sha256": strings.Repeat("5c", 32), "builder": "debian-node:2", "command": "make site",
				"output": "dist", "activate": false, "host": in["host"]}
			reply(w, 202, newBuild(r.PathValue("dep"), action, n, spec))
		})
	}
	mux.HandleFunc("GET /v1/deployments/{dep}/versions/{n}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("dep") == "missing" {
			problem(w, 404, `deployment "missing" not found`)
			return
		}
		v := version(4, "active")
		v = strings.Replace(v, `"created_at"`, `"url":"https://`+r.PathValue("dep")+`.sites.test/",`+builtFields+`,"created_at"`, 1)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, v)
	})
	mux.HandleFunc("PATCH /v1/deployments/demo", func(w http.ResponseWriter, r *http.Request) {
		var in map[string]any
		json.NewDecoder(r.Body).Decode(&in)
		reply(w, 200, map[string]any{"id": "dep_1", "name": "demo", "kind": "static", "retention_days": 30,
			"source_retention_days": in["source_retention_days"], "created_at": "2024-05-01T12:00:00Z"})
	})
	mux.HandleFunc("GET /v1/deployments", func(w http.ResponseWriter, r *http.Request) {
		reply(w, 200, map[string]any{"deployments": []map[string]any{{"id": "dep_1", "name": "demo", "kind": "static"}}})
	})
	mux.HandleFunc("GET /v1/deployments/demo/history", func(w http.ResponseWriter, r *http.Request) {
		v := strings.Replace(version(4, "archived"), `"created_at"`, builtFields+`,"created_at"`, 1)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"at":"2024-05-02T12:00:00Z","deployment_id":"dep_1","follows_active":false,"since":"2024-05-01T12:00:00Z","event_id":7,`+
			`"version":`+v+`,"release":{"sha256":"ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12","kind":"static",`+
			`"size_bytes":52000,"collected_at":"2024-06-01T00:00:00Z"}}`)
	})
}

// builtFields are the JSON fields of a version a build made and a
// rebuild checked.
const builtFields = `"source_sha256":"5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c","source_snapshot":true,` +
	`"build":{"build_id":"bld_1","builder":"bebebebebebebebebebebebebebebebebebebebebebebebebebebebebebebebe","builder_ref":"debian-node:2",` +
	`"command":"make site","output":"dist","env":{"NODE_ENV":"production"},"source_date_epoch":1714564800,"duration_ms":4200,` +
	`"log_sha256":"1010101010101010101010101010101010101010101010101010101010101010"},` +
	`"rebuild":{"build_id":"bld_3","verdict":"differs","at":"2024-05-03T12:00:00Z","sha256":"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff","differs":["build-time.txt"]}`
