package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// sharedToken is the --token of the tests that start several processes on
// one database (at least 32 characters, as the server demands).
const sharedToken = "shared-admin-token-0123456789abcdef"

// binServer is a `cairn server` process of the built binary, on its own
// data dir, SQLite and files.
type binServer struct {
	api, edge, data, token string
}

// startBinary runs the binary's server with args added and waits for it.
func startBinary(t *testing.T, args ...string) *binServer {
	t.Helper()
	s := &binServer{api: freeAddr(t), edge: freeAddr(t), data: t.TempDir()}
	process(t, t.TempDir(), append([]string{"--data", s.data, "--api-addr", s.api, "--edge-addr", s.edge,
		"--gc-interval", "0"}, args...)...)
	waitListen(t, s.api)
	waitListen(t, s.edge)
	b, err := os.ReadFile(filepath.Join(s.data, "token"))
	if err != nil {
		t.Fatal(err)
	}
	s.token = strings.TrimSpace(string(b))
	s.api, s.edge = "http://"+s.api, "http://"+s.edge
	return s
}

// call sends one request with Authorization auth ("" for none) and
// returns the status and the body.
func (s *binServer) call(t *testing.T, auth, method, path, ctype string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.api+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// admin sends a JSON call as the bootstrap admin and decodes the answer.
func (s *binServer) admin(t *testing.T, method, path string, in, out any, want int) {
	t.Helper()
	var body []byte
	if in != nil {
		body, _ = json.Marshal(in)
	}
	code, b := s.call(t, "Bearer "+s.token, method, path, "application/json", body)
	if code != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, code, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

// mint creates a token with the given scopes (and expires_in, if any) and
// returns its id and secret.
func (s *binServer) mint(t *testing.T, expiresIn string, scopes ...string) (id, secret string, expires time.Time) {
	t.Helper()
	in := map[string]any{"name": strings.Join(scopes, "+"), "scopes": scopes}
	if expiresIn != "" {
		in["expires_in"] = expiresIn
	}
	var out struct {
		ID        string     `json:"id"`
		Secret    string     `json:"secret"`
		ExpiresAt *time.Time `json:"expires_at"`
	}
	s.admin(t, "POST", "/v1/tokens", in, &out, 201)
	if out.ExpiresAt != nil {
		expires = *out.ExpiresAt
	}
	return out.ID, out.Secret, expires
}

// pushImage pushes a random image to repo:tag with Basic auth (as docker
// login does) and returns its manifest digest.
func (s *binServer) pushImage(t *testing.T, repo, tag, password string) string {
	t.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(strings.TrimPrefix(s.api, "http://")+"/"+repo+":"+tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, remote.WithAuth(&authn.Basic{Username: "ci", Password: password})); err != nil {
		t.Fatalf("push %s:%s: %v", repo, tag, err)
	}
	d, _ := img.Digest()
	return d.String()
}

// principals of the matrix, in order.
var principals = []string{"none", "bad", "expired", "revoked", "admin", "read", "deploy:a", "deploy:b", "push:a", "pull:a", "agent"}

// TestScopeMatrix runs every /v1 route (checked against the routes
// internal/api serves) and every /v2 endpoint against a server process, as
// each principal: no token, an unknown one, an expired one, a revoked one,
// the bootstrap admin (the token file) and tokens with the scopes read,
// deploy:a, deploy:b, push:a, pull:a and agent. A route
// answers its status to the principals allowed to call it, 403 to the
// other valid tokens and 401 to the rest. This is the table of
// docs/design.md, "Threat model: tokens and scopes".
func TestScopeMatrix(t *testing.T) {
	s := startBinary(t)
	// deployments a and b (oci, created by pushes as the bootstrap admin
	// over Basic auth), one domain each
	s.pushImage(t, "a", "v1", s.token)
	s.pushImage(t, "b", "v1", s.token)
	var v1 struct {
		ID             string `json:"id"`
		ArtifactSHA256 string `json:"artifact_sha256"`
	}
	s.admin(t, "GET", "/v1/deployments/a/versions/1", nil, &v1, 200)
	for _, d := range []string{"a", "b"} {
		s.admin(t, "POST", "/v1/domains", map[string]any{"hostname": d + ".example.test", "deployment": d}, nil, 201)
	}
	var manifest []byte
	{
		code, b := s.call(t, "Bearer "+s.token, "GET", "/v2/a/manifests/v1", "", nil)
		if code != 200 {
			t.Fatalf("manifest: %d %s", code, b)
		}
		manifest = b
	}
	var mf struct {
		MediaType string `json:"mediaType"`
		Config    struct {
			Digest string `json:"digest"`
		} `json:"config"`
	}
	if err := json.Unmarshal(manifest, &mf); err != nil {
		t.Fatal(err)
	}

	auth := map[string]string{"none": "", "bad": "Bearer cairn_" + strings.Repeat("0", 64), "admin": "Bearer " + s.token}
	ids, secrets := map[string]string{}, map[string]string{}
	for _, p := range []string{"read", "deploy:a", "deploy:b", "push:a", "pull:a", "agent"} {
		id, secret, _ := s.mint(t, "", p)
		auth[p], ids[p], secrets[p] = "bearer "+secret, id, secret // the scheme in lower case
	}
	revokedID, revoked, _ := s.mint(t, "", "admin")
	s.admin(t, "DELETE", "/v1/tokens/"+revokedID, nil, nil, 200)
	auth["revoked"] = "Bearer " + revoked
	_, expired, at := s.mint(t, "1s", "admin")
	auth["expired"] = "Bearer " + expired

	const (
		ctJSON = "application/json"
	)
	zero := "sha256:" + strings.Repeat("0", 64)
	all := []string{"admin", "read", "deploy:a", "deploy:b", "push:a", "pull:a", "agent"}
	apiReaders := []string{"admin", "read", "deploy:a", "deploy:b"}
	readA := []string{"admin", "read", "deploy:a"}
	deployA := []string{"admin", "deploy:a"}
	pullA := []string{"admin", "read", "deploy:a", "push:a", "pull:a"}
	pushA := []string{"admin", "push:a"}
	admin := []string{"admin"}
	readAll := []string{"admin", "read"}
	agent := []string{"admin", "agent"}
	readOrAgent := []string{"admin", "read", "agent"}
	sha0 := strings.Repeat("0", 64)
	routes := []struct {
		method, path, ctype, body string
		allowed                   []string
		ok                        int
	}{
		{"POST", "/v1/deployments", ctJSON, `{"name":"a","kind":"oci"}`, admin, 409},
		{"GET", "/v1/deployments", "", "", apiReaders, 200},
		{"GET", "/v1/deployments/a", "", "", readA, 200},
		{"PATCH", "/v1/deployments/a", ctJSON, `{"retention_days":30}`, admin, 200},
		{"POST", "/v1/deployments/a/versions?activate=false", ctJSON, `{"image":"v1"}`, deployA, 201},
		{"GET", "/v1/deployments/a/versions", "", "", readA, 200},
		{"GET", "/v1/deployments/a/versions/1", "", "", readA, 200},
		{"GET", "/v1/versions/" + v1.ID, "", "", readA, 200},
		{"POST", "/v1/deployments/a/activate", ctJSON, `{"version_number":1}`, deployA, 200},
		{"POST", "/v1/deployments/a/rollback", ctJSON, `{"version_number":1}`, deployA, 200},
		{"GET", "/v1/deployments/a/history", "", "", readA, 200},
		{"GET", "/v1/releases/" + v1.ArtifactSHA256, "", "", readAll, 200},
		{"GET", "/v1/releases/" + v1.ArtifactSHA256 + "/artifact", "", "", readOrAgent, 200},
		{"GET", "/v1/releases/" + sha0 + "/erofs", "", "", readOrAgent, 404},
		{"GET", "/v1/deployments/a/versions/1/rootfs", "", "", readA, 200},
		{"POST", "/v1/deployments/a/publishes", ctJSON, `{`, deployA, 400},
		{"PUT", "/v1/deployments/a/publishes/pub_none/contents/" + sha0, "application/octet-stream", "x", deployA, 404},
		{"POST", "/v1/deployments/a/publishes/pub_none/commit", ctJSON, `{}`, deployA, 404},
		{"DELETE", "/v1/deployments/a/publishes/pub_none", "", "", deployA, 404},
		{"POST", "/v1/hosts", ctJSON, `{`, agent, 400},
		{"GET", "/v1/hosts", "", "", readAll, 200},
		{"POST", "/v1/hosts/host_none/heartbeat", ctJSON, `{}`, agent, 404},
		{"GET", "/v1/hosts/host_none/desired", "", "", agent, 404},
		{"POST", "/v1/hosts/host_none/drain", "", "", admin, 404},
		{"GET", "/v1/deployments/a/instances", "", "", readA, 200},
		{"GET", "/v1/deployments/a/instances/inst_none/logs", "", "", readA, 404},
		{"GET", "/v1/deployments/a/desired", "", "", readA, 200},
		{"GET", "/v1/deployments/a/rollouts", "", "", readA, 200},
		{"GET", "/v1/deployments/a/rollouts/ro_none", "", "", readA, 404},
		{"PUT", "/v1/deployments/a/sources/" + sha0, "application/octet-stream", "x", deployA, 400},
		{"GET", "/v1/deployments/a/sources/" + sha0, "", "", readA, 404},
		{"POST", "/v1/deployments/a/builds", ctJSON, `{}`, deployA, 400},
		{"GET", "/v1/deployments/a/builds", "", "", readA, 200},
		{"GET", "/v1/builds/bld_none", "", "", readAll, 404},
		{"GET", "/v1/builds/bld_none/log", "", "", readAll, 404},
		{"POST", "/v1/deployments/a/versions/1/rebuild", "", "", deployA, 409},
		{"POST", "/v1/deployments/a/versions/1/restore", "", "", deployA, 409},
		{"POST", "/v1/hosts/host_none/builds/claim", "", "", agent, 404},
		{"POST", "/v1/hosts/host_none/builds/bld_none/result", "", "", agent, 404},
		{"POST", "/v1/domains", ctJSON, `{"hostname":"a.example.test","deployment":"a"}`, admin, 409},
		{"GET", "/v1/domains", "", "", apiReaders, 200},
		{"GET", "/v1/domains/a.example.test", "", "", readA, 200},
		{"DELETE", "/v1/domains/none.example.test", "", "", admin, 404},
		{"DELETE", "/v1/deployments/none", "", "", admin, 404},
		{"PATCH", "/v1/domains/a.example.test", ctJSON, `{"version_number":1}`, deployA, 200},
		{"GET", "/v1/domains/a.example.test/history", "", "", readA, 200},
		{"GET", "/v1/events", "", "", readAll, 200},
		{"GET", "/v1/events?deployment=a", "", "", readA, 200},
		{"POST", "/v1/gc", ctJSON, `{"dry_run":true}`, admin, 200},
		{"POST", "/v1/tokens", ctJSON, `{"scopes":["read"]}`, admin, 201},
		{"GET", "/v1/tokens", "", "", admin, 200},
		{"GET", "/v1/tokens/" + ids["read"], "", "", admin, 200},
		{"DELETE", "/v1/tokens/tok_none", "", "", admin, 404},
		{"GET", "/v1/nothing", "", "", all, 404},
		{"GET", "/v2/", "", "", all, 200},
		{"GET", "/v2/_catalog", "", "", readAll, 200},
		{"GET", "/v2/a/manifests/v1", "", "", pullA, 200},
		{"HEAD", "/v2/a/manifests/v1", "", "", pullA, 200},
		{"GET", "/v2/a/blobs/" + mf.Config.Digest, "", "", pullA, 200},
		{"GET", "/v2/a/tags/list", "", "", pullA, 200},
		{"POST", "/v2/a/blobs/uploads/", "", "", pushA, 202},
		{"PUT", "/v2/a/manifests/v1", mf.MediaType, string(manifest), pushA, 201},
		{"DELETE", "/v2/a/manifests/" + zero, "", "", pushA, 404},
		{"HEAD", "/v2/a/blobs/" + mf.Config.Digest, "", "", pullA, 200},
		{"DELETE", "/v2/a/blobs/" + zero, "", "", pushA, 404},
		{"GET", "/v2/a/referrers/" + zero, "", "", pullA, 200},
		{"POST", "/v2/a/blobs/uploads/?mount=" + mf.Config.Digest + "&from=a", "", "", pushA, 201},
		{"GET", "/v2/a/blobs/uploads/none", "", "", pushA, 404},
		{"PATCH", "/v2/a/blobs/uploads/none", "application/octet-stream", "x", pushA, 404},
		{"PUT", "/v2/a/blobs/uploads/none?digest=" + zero, "application/octet-stream", "", pushA, 404},
		{"DELETE", "/v2/a/blobs/uploads/none", "", "", pushA, 404},
	}
	// Every route internal/api serves is in the matrix.
	param := regexp.MustCompile(`\{[a-z0-9_]+\}`)
	files, _ := filepath.Glob("../api/*.go")
	served := 0
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`a\.handle\("([A-Z]+) (/[^"]*)"`).FindAllSubmatch(src, -1) {
			served++
			parts := param.Split(string(m[2]), -1)
			for i := range parts {
				parts[i] = regexp.QuoteMeta(parts[i])
			}
			re := regexp.MustCompile("^" + strings.Join(parts, `[^/?]+`) + `(\?.*)?$`)
			covered := false
			for _, r := range routes {
				covered = covered || r.method == string(m[1]) && re.MatchString(r.path)
			}
			if !covered {
				t.Errorf("the matrix does not call %s %s (%s)", m[1], m[2], f)
			}
		}
	}
	if served < 40 {
		t.Fatalf("found only %d routes in internal/api", served)
	}
	time.Sleep(time.Until(at) + 10*time.Millisecond) // the expired token is past its expiry
	for _, r := range routes {
		allowed := map[string]bool{}
		for _, p := range r.allowed {
			allowed[p] = true
		}
		for _, p := range principals {
			want := http.StatusUnauthorized
			switch {
			case allowed[p]:
				want = r.ok
			case auth[p] != "" && p != "bad" && p != "expired" && p != "revoked":
				want = http.StatusForbidden
			}
			code, b := s.call(t, auth[p], r.method, r.path, r.ctype, []byte(r.body))
			if code != want {
				t.Errorf("%s %s as %s: %d %.200s, want %d", r.method, r.path, p, code, b, want)
			}
		}
	}
	// a push by push:a (docker login style: Basic, the token as password)
	// publishes a version of a; the deploy token published one too (its
	// activate and repoint changed nothing, so they have no event): their
	// events name them
	s.pushImage(t, "a", "v2", secrets["push:a"])
	var evs struct {
		Events []struct {
			Actor  string `json:"actor"`
			Action string `json:"action"`
		} `json:"events"`
	}
	s.admin(t, "GET", "/v1/events?deployment=a", nil, &evs, 200)
	acted := map[string]bool{}
	for _, e := range evs.Events {
		acted[e.Action+" "+e.Actor] = true
	}
	for _, want := range []string{"publish token:" + ids["deploy:a"], "publish token:" + ids["push:a"],
		"deployment.create token:admin"} {
		if !acted[want] {
			t.Errorf("no event %q in %v", want, acted)
		}
	}
}

// TestAnonymousReads: without a token every read of /v1 answers 401 with
// problem+json and a Bearer challenge; the probes, /metrics and the edge
// answer anyone. With --metrics-token-required, /metrics needs a token
// with the read or admin scope.
func TestAnonymousReads(t *testing.T) {
	s := startBinary(t)
	var tar bytes.Buffer
	tar.Write(tarOf(t, map[string]string{"index.html": "<h1>public</h1>"}))
	s.admin(t, "POST", "/v1/deployments", map[string]any{"name": "site"}, nil, 201)
	var v struct {
		ID             string `json:"id"`
		ArtifactSHA256 string `json:"artifact_sha256"`
	}
	code, b := s.call(t, "Bearer "+s.token, "POST", "/v1/deployments/site/versions?activate=false", "application/x-tar", tar.Bytes())
	if code != 201 || json.Unmarshal(b, &v) != nil {
		t.Fatalf("publish: %d %s", code, b)
	}
	s.admin(t, "POST", "/v1/deployments/site/activate", map[string]any{"version_number": 1}, nil, 200)
	s.admin(t, "POST", "/v1/domains", map[string]any{"hostname": "www.site.test", "deployment": "site"}, nil, 201)
	for _, path := range []string{"/v1/deployments", "/v1/deployments/site", "/v1/deployments/site/versions",
		"/v1/deployments/site/versions/1", "/v1/versions/" + v.ID, "/v1/deployments/site/history",
		"/v1/releases/" + v.ArtifactSHA256, "/v1/releases/" + v.ArtifactSHA256 + "/artifact",
		"/v1/domains/www.site.test", "/v1/domains/www.site.test/history", "/v1/events", "/v1/tokens", "/v1/nothing"} {
		req, _ := http.NewRequest("GET", s.api+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 401 || resp.Header.Get("Content-Type") != "application/problem+json" ||
			!strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") || strings.Contains(string(b), "site") {
			t.Errorf("anonymous GET %s: %d %s %q", path, resp.StatusCode, b, resp.Header)
		}
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if code, b := s.call(t, "", "GET", path, "", nil); code != 200 {
			t.Errorf("anonymous GET %s: %d %s", path, code, b)
		}
	}
	req, _ := http.NewRequest("GET", s.edge+"/", nil)
	req.Host = "www.site.test"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "<h1>public</h1>" {
		t.Errorf("edge, anonymous: %d %q", resp.StatusCode, b)
	}

	m := startBinary(t, "--metrics-token-required")
	_, read, _ := m.mint(t, "", "read")
	_, deploy, _ := m.mint(t, "", "deploy:site")
	for _, c := range []struct {
		auth string
		want int
	}{{"", 401}, {"Bearer " + m.token, 200}, {"Bearer " + read, 200}, {"Bearer " + deploy, 403}} {
		if code, b := m.call(t, c.auth, "GET", "/metrics", "", nil); code != c.want {
			t.Errorf("--metrics-token-required, GET /metrics with %q: %d %.100s, want %d", c.auth, code, b, c.want)
		}
	}
	if code, _ := m.call(t, "", "GET", "/readyz", "", nil); code != 200 {
		t.Errorf("--metrics-token-required, anonymous /readyz: %d", code)
	}
}

// TestShortTokenRefused: a --token under 32 characters stops the server
// at start with a message naming the flag.
func TestShortTokenRefused(t *testing.T) {
	c := exec.Command(cairnBinary(t), "server", "--data", t.TempDir(), "--token", "tok")
	out, err := c.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--token") || !strings.Contains(string(out), "at least 32") {
		t.Fatalf("cairn server --token tok: %v\n%s", err, out)
	}
	if n := strings.Count(strings.TrimSpace(string(out)), "\n"); n != 0 {
		t.Errorf("want one line, got %d:\n%s", n+1, out)
	}
}
