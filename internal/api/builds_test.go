package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/blob/fs"
	"github.com/cairnhq/cairn/internal/hostapi"
	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/meta/sqlite"
	"github.com/cairnhq/cairn/internal/publish"
	"github.com/cairnhq/cairn/internal/release"
)

// buildAPI is an API with builds and hosts on SQLite and files: a static
// deployment demo, a stored snapshot (returned), a rootfs builder
// tools:1 (a tree packed as a rootfs release) and a registered host.
type buildAPI struct {
	*API
	store    *sqlite.Store
	source   string
	artifact string // the snapshot's bytes
	host     string
}

func newBuildAPI(t testing.TB) *buildAPI {
	dir := t.TempDir()
	store, err := sqlite.Open(filepath.Join(dir, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	blobs, err := fs.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	pub := &publish.Publisher{Meta: store, Blobs: blobs, StageDir: t.TempDir(),
		Limits: release.Limits{MaxFiles: 100, MaxBytes: 1 << 20}}
	a := &buildAPI{API: New(Config{Meta: store, Blobs: blobs, Publisher: pub, Token: testToken, Builds: store, Hosts: store}),
		store: store}
	a.must(t, "POST", "/v1/deployments", "", `{"name":"demo"}`, 201)
	// the snapshot
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "build.sh"), []byte("echo hi > dist/index.html\n"), 0o644)
	var art bytes.Buffer
	res, err := release.PackDir(context.Background(), src, &art, release.PackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a.source, a.artifact = res.SHA256, art.String()
	a.must(t, "PUT", "/v1/deployments/demo/sources/"+res.SHA256, "application/zstd", art.String(), 201)
	a.must(t, "PUT", "/v1/deployments/demo/sources/"+res.SHA256, "application/zstd", art.String(), 200)
	// the builder: a rootfs deployment's version 1
	a.must(t, "POST", "/v1/deployments", "", `{"name":"tools","kind":"rootfs"}`, 201)
	a.must(t, "POST", `/v1/deployments/tools/versions?runtime={"cmd":["/bin/true"]}`, "application/x-tar",
		string(specTar("fbin/true||#!/bin/sh\n")), 201)
	var h struct{ ID string }
	json.Unmarshal([]byte(a.must(t, "POST", "/v1/hosts", "", `{"hostname":"h","region":"eu","driver":"runc","isolation":"container",
		"capacity":{"cpu":2,"memory_bytes":1073741824,"instances":4},"agent_url":"http://127.0.0.1:1","agent_key":"k"}`, 200)), &h)
	a.host = h.ID
	return a
}

func (a *buildAPI) do(method, path, ctype, body string) (int, string) {
	return a.doAs(testToken, method, path, ctype, body)
}

// token mints a token with scope and returns its secret.
func (a *buildAPI) token(t testing.TB, scope string) string {
	t.Helper()
	var tok struct{ Secret string }
	json.Unmarshal([]byte(a.must(t, "POST", "/v1/tokens", "", `{"name":"t","scopes":["`+scope+`"]}`, 201)), &tok)
	return tok.Secret
}

func (a *buildAPI) doAs(secret, method, path, ctype, body string) (int, string) {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+secret)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func (a *buildAPI) must(t testing.TB, method, path, ctype, body string, want int) string {
	t.Helper()
	code, out := a.do(method, path, ctype, body)
	if code != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, code, out, want)
	}
	return out
}

// TestBuildRequests: what POST …/builds accepts and refuses, with 4xx
// that name the field.
func TestBuildRequests(t *testing.T) {
	a := newBuildAPI(t)
	ok := fmt.Sprintf(`"source_sha256":%q,"builder":"tools:1","command":"sh build.sh"`, a.source)
	soon := fmt.Sprint(time.Now().Add(time.Hour).Unix())      // a clock a little ahead
	late := fmt.Sprint(time.Now().Add(25 * time.Hour).Unix()) // more than a day ahead
	for _, c := range []struct {
		body string
		want int
		says string
	}{
		{`{` + ok + `}`, 202, `"state":"queued"`},
		{`{` + ok + `,"output":".","env":{"A":"1"},"timeout":"1m","memory_bytes":134217728}`, 202, `"timeout":"1m0s"`},
		{`{` + ok + `,"output":"../x"}`, 400, "output"},
		{`{` + ok + `,"output":"/abs"}`, 400, "output"},
		{`{` + ok + `,"env":{"PATH":"/x"}}`, 400, "PATH"},
		{`{` + ok + `,"env":{"1A":"x"}}`, 400, "env"},
		{`{` + ok + `,"timeout":"2h"}`, 400, "timeout"},
		{`{` + ok + `,"memory_bytes":1}`, 400, "memory_bytes"},
		{`{` + ok + `,"entrypoint":"../x"}`, 400, "entrypoint"},
		{fmt.Sprintf(`{"source_sha256":%q,"builder":"tools:1","command":" "}`, a.source), 400, "command"},
		{fmt.Sprintf(`{"source_sha256":%q,"builder":"tools:9","command":"x"}`, a.source), 400, "no version 9"},
		{fmt.Sprintf(`{"source_sha256":%q,"builder":"demo:1","command":"x"}`, a.source), 400, "builder"},
		{fmt.Sprintf(`{"source_sha256":%q,"builder":"nope:1","command":"x"}`, a.source), 400, "no deployment"},
		{fmt.Sprintf(`{"source_sha256":%q,"builder":"sha256:%s","command":"x"}`, a.source, strings.Repeat("0", 64)), 400, "rootfs"},
		{fmt.Sprintf(`{"source_sha256":%q,"builder":"tools","command":"x"}`, a.source), 400, "NAME:N"},
		{`{"source_sha256":"` + strings.Repeat("1", 64) + `","builder":"tools:1","command":"x"}`, 404, "upload it"},
		{`{"source_sha256":"x","builder":"tools:1","command":"x"}`, 400, "source sha256"},
		{`{` + ok + `,"bogus":1}`, 400, "bogus"},
		{`{` + ok + `,"source_date_epoch":1700000000}`, 202, `"source_date_epoch":1700000000`},
		{`{` + ok + `,"source_date_epoch":` + soon + `}`, 202, `"source_date_epoch":` + soon},
		{`{` + ok + `,"source_date_epoch":0}`, 400, "source_date_epoch"},
		{`{` + ok + `,"source_date_epoch":-1}`, 400, "source_date_epoch"},
		{`{` + ok + `,"source_date_epoch":` + late + `}`, 400, "source_date_epoch"},
		{`{` + ok + `,"source_date_epoch":"1700000000"}`, 400, "source_date_epoch"},
		{`{` + ok + `,"network":true}`, 202, `"network":true`},
		{`{` + ok + `,"network":"yes"}`, 400, "network"},
	} {
		code, out := a.do("POST", "/v1/deployments/demo/builds", "application/json", c.body)
		if code != c.want || !strings.Contains(out, c.says) {
			t.Errorf("POST builds %s: %d %s, want %d saying %q", c.body, code, out, c.want, c.says)
		}
	}
	// the given epoch is the build's, in its record (which the host's claim
	// and rebuilds read); absent, the snapshot's first storing
	var given, dflt meta.Build
	json.Unmarshal([]byte(a.must(t, "POST", "/v1/deployments/demo/builds", "", `{`+ok+`,"source_date_epoch":1600000000}`, 202)), &given)
	json.Unmarshal([]byte(a.must(t, "GET", "/v1/builds/"+given.ID, "", "", 200)), &given)
	if given.SourceDateEpoch != 1600000000 {
		t.Errorf("build record: source_date_epoch %d, want the given 1600000000", given.SourceDateEpoch)
	}
	json.Unmarshal([]byte(a.must(t, "POST", "/v1/deployments/demo/builds", "", `{`+ok+`}`, 202)), &dflt)
	var src struct {
		CreatedAt time.Time `json:"created_at"`
	}
	json.Unmarshal([]byte(a.must(t, "GET", "/v1/deployments/demo/sources/"+a.source, "", "", 200)), &src)
	if dflt.SourceDateEpoch != src.CreatedAt.Unix() || dflt.SourceDateEpoch == 0 {
		t.Errorf("build record: source_date_epoch %d, want the snapshot's %d", dflt.SourceDateEpoch, src.CreatedAt.Unix())
	}
	// a missing deployment needs create, and a snapshot uploaded through
	// its name; a non-static one is refused
	if code, out := a.do("POST", "/v1/deployments/fresh/builds", "", `{`+ok+`}`); code != 404 {
		t.Errorf("build of a missing deployment without create: %d %s", code, out)
	}
	if code, out := a.do("POST", "/v1/deployments/fresh/builds", "", `{`+ok+`,"create":true}`); code != 404 || !strings.Contains(out, "upload it") {
		t.Errorf("build of a missing deployment from a snapshot it did not upload: %d %s", code, out)
	}
	if code, out := a.do("GET", "/v1/deployments/fresh/sources/"+a.source, "", ""); code != 404 {
		t.Errorf("another deployment's snapshot: %d %s", code, out)
	}
	if code, out := a.do("PUT", "/v1/deployments/fresh/sources/"+a.source, "", "not the bytes"); code != 400 {
		t.Errorf("claiming another deployment's snapshot without its bytes: %d %s", code, out)
	}
	a.must(t, "PUT", "/v1/deployments/fresh/sources/"+a.source, "application/zstd", a.artifact, 201)
	if code, out := a.do("POST", "/v1/deployments/fresh/builds", "", `{`+ok+`,"create":true}`); code != 202 {
		t.Errorf("build of a missing deployment with create: %d %s", code, out)
	}
	if code, out := a.do("GET", "/v1/deployments/demo/sources/"+a.source, "", ""); code != 200 || strings.Contains(out, "uri") {
		t.Errorf("a snapshot's record: %d %s, want no uri", code, out)
	}
	// a token of demo alone: no builder by digest, no builder it cannot read
	deploy := a.token(t, "deploy:demo")
	var rel struct {
		ArtifactSHA256 string `json:"artifact_sha256"`
	}
	json.Unmarshal([]byte(a.must(t, "GET", "/v1/deployments/tools/versions/1", "", "", 200)), &rel)
	for _, builder := range []string{"tools:1", "sha256:" + rel.ArtifactSHA256} {
		body := fmt.Sprintf(`{"source_sha256":%q,"builder":%q,"command":"x"}`, a.source, builder)
		if code, out := a.doAs(deploy, "POST", "/v1/deployments/demo/builds", "", body); code != 403 {
			t.Errorf("deploy:demo building with %s: %d %s", builder, code, out)
		}
	}
	if code, out := a.doAs(deploy, "GET", "/v1/deployments/demo/sources/"+a.source, "", ""); code != 200 {
		t.Errorf("deploy:demo reading its snapshot: %d %s", code, out)
	}
	// a pin to a host that cannot run builds
	for _, host := range []string{"host_nope"} {
		if code, out := a.do("POST", "/v1/deployments/demo/builds", "", `{`+ok+`,"host":"`+host+`"}`); code != 400 {
			t.Errorf("a build pinned to %s: %d %s", host, code, out)
		}
	}
	if code, out := a.do("POST", "/v1/deployments/tools/builds", "", `{`+ok+`}`); code != 400 || !strings.Contains(out, "static") {
		t.Errorf("build of a rootfs deployment: %d %s", code, out)
	}
	// a version built elsewhere has nothing to rebuild or restore
	for _, verb := range []string{"rebuild", "restore"} {
		if code, out := a.do("POST", "/v1/deployments/tools/versions/1/"+verb, "", ""); code != 409 {
			t.Errorf("%s of a version not built here: %d %s", verb, code, out)
		}
	}
	// a publish may name the stored snapshot, not another digest
	tarBody := string(specTar("findex.html||hi"))
	out := a.must(t, "POST", "/v1/deployments/demo/versions?source_sha256="+a.source, "application/x-tar", tarBody, 201)
	if !strings.Contains(out, `"source_snapshot":true`) || !strings.Contains(out, a.source) {
		t.Errorf("a publish naming its snapshot: %s", out)
	}
	if code, out := a.do("POST", "/v1/deployments/demo/versions?source_sha256="+strings.Repeat("2", 64), "application/x-tar", tarBody); code != 400 {
		t.Errorf("a publish naming an unknown snapshot: %d %s", code, out)
	}
	// a snapshot upload must pack to its name
	if code, out := a.do("PUT", "/v1/deployments/demo/sources/"+strings.Repeat("3", 64), "", tarBody); code != 422 {
		t.Errorf("a snapshot that packs to another digest: %d %s", code, out)
	}
}

// TestBuildNetwork: a build asked with network has it in its record, in
// what its host claims and in the version it makes; a rebuild of that
// version asks for network too. A build without it has none.
func TestBuildNetwork(t *testing.T) {
	a := newBuildAPI(t)
	ok := fmt.Sprintf(`"source_sha256":%q,"builder":"tools:1","command":"sh build.sh"`, a.source)
	var b meta.Build
	json.Unmarshal([]byte(a.must(t, "POST", "/v1/deployments/demo/builds", "", `{`+ok+`,"network":true}`, 202)), &b)
	json.Unmarshal([]byte(a.must(t, "GET", "/v1/builds/"+b.ID, "", "", 200)), &b)
	if !b.Network {
		t.Errorf("the build record of a build with network: %+v", b.BuildSpec)
	}
	var hb hostapi.Build
	json.Unmarshal([]byte(a.must(t, "POST", "/v1/hosts/"+a.host+"/builds/claim", "", "", 200)), &hb)
	if hb.ID != b.ID || !hb.Network {
		t.Fatalf("claimed %+v, want %s with network", hb, b.ID)
	}
	ctype, body := resultBody([]byte(`{"exit_code":0,"duration_ms":3}`), []byte("ok\n"), specTar("findex.html||built"), true)
	a.must(t, "POST", "/v1/hosts/"+a.host+"/builds/"+b.ID+"/result", ctype, body, 200)
	var v meta.Version
	json.Unmarshal([]byte(a.must(t, "GET", "/v1/deployments/demo/versions/1", "", "", 200)), &v)
	if v.Build == nil || !v.Build.Network {
		t.Fatalf("the version a build with network made: %+v", v.Build)
	}
	var rb meta.Build
	json.Unmarshal([]byte(a.must(t, "POST", "/v1/deployments/demo/versions/1/rebuild", "", "", 202)), &rb)
	if !rb.Network {
		t.Errorf("rebuild of a version built with network: %+v", rb.BuildSpec)
	}
	hb = hostapi.Build{}
	json.Unmarshal([]byte(a.must(t, "POST", "/v1/hosts/"+a.host+"/builds/claim", "", "", 200)), &hb)
	if hb.ID != rb.ID || !hb.Network {
		t.Errorf("the rebuild claimed %+v, want %s with network", hb, rb.ID)
	}
	// without it: none, in the record and the claim (which fails the
	// rebuild the host left running)
	json.Unmarshal([]byte(a.must(t, "POST", "/v1/deployments/demo/builds", "", `{`+ok+`}`, 202)), &b)
	if out := a.must(t, "GET", "/v1/builds/"+b.ID, "", "", 200); strings.Contains(out, "network") {
		t.Errorf("a build without network: %s", out)
	}
	hb = hostapi.Build{}
	json.Unmarshal([]byte(a.must(t, "POST", "/v1/hosts/"+a.host+"/builds/claim", "", "", 200)), &hb)
	if hb.ID != b.ID || hb.Network {
		t.Errorf("claimed %+v, want %s without network", hb, b.ID)
	}
}

// resultBody is a multipart result as an agent sends it.
func resultBody(result, log, artifact []byte, withArtifact bool) (string, string) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	w, _ := mw.CreateFormField("result")
	w.Write(result)
	w, _ = mw.CreateFormField("log")
	w.Write(log)
	if withArtifact {
		w, _ = mw.CreateFormFile("artifact", "a.tar.zst")
		w.Write(artifact)
	}
	mw.Close()
	return mw.FormDataContentType(), b.String()
}

// claimed queues a build of demo and claims it for the API's host.
func (a *buildAPI) claimed(t testing.TB) string {
	t.Helper()
	out := a.must(t, "POST", "/v1/deployments/demo/builds", "",
		fmt.Sprintf(`{"source_sha256":%q,"builder":"tools:1","command":"x"}`, a.source), 202)
	var b meta.Build
	json.Unmarshal([]byte(out), &b)
	var hb hostapi.Build
	json.Unmarshal([]byte(a.must(t, "POST", "/v1/hosts/"+a.host+"/builds/claim", "", "", 200)), &hb)
	if hb.ID != b.ID {
		t.Fatalf("claimed %s, queued %s", hb.ID, b.ID)
	}
	return b.ID
}

// FuzzBuildResult: whatever an agent sends as a build's result (its
// JSON, its log, its artifact, cut or not), the API answers below 500 and
// the build ends succeeded only with a version whose release verifies.
func FuzzBuildResult(f *testing.F) {
	f.Add([]byte(`{"exit_code":0,"duration_ms":5}`), []byte("log\n"), "findex.html||hi", true, uint16(0))
	f.Add([]byte(`{"exit_code":2}`), []byte("\xff\x00"), "", false, uint16(0))
	f.Add([]byte(`{"exit_code":-1,"error":"timed out"}`), []byte(""), "", false, uint16(0))
	f.Add([]byte(`{"exit_code":0,"sha256":"00"}`), []byte("x"), "fa/../b||x", true, uint16(9))
	f.Add([]byte(`not json`), []byte("x"), "", true, uint16(0))
	a := newBuildAPI(f)
	f.Fuzz(func(t *testing.T, result, log []byte, spec string, withArtifact bool, cut uint16) {
		id := a.claimed(t)
		art := specTar(spec)
		if cut > 0 && int(cut) < len(art) {
			art = art[:cut]
		}
		ctype, body := resultBody(result, log, art, withArtifact)
		code, out := a.do("POST", "/v1/hosts/"+a.host+"/builds/"+id+"/result", ctype, body)
		if code >= 500 {
			t.Fatalf("result answered %d: %s", code, out)
		}
		if code != 200 {
			return // a build left running fails at the host's next claim
		}
		var b meta.Build
		json.Unmarshal([]byte(out), &b)
		if b.State == meta.BuildSucceeded {
			if b.VersionNumber == 0 || b.ArtifactSHA256 == "" {
				t.Fatalf("a succeeded build without its version: %s", out)
			}
			code, art := a.do("GET", "/v1/releases/"+b.ArtifactSHA256+"/artifact", "", "")
			if _, err := release.Verify(context.Background(), strings.NewReader(art), int64(len(art))); code != 200 || err != nil {
				t.Fatalf("a build's release does not verify: %d %v", code, err)
			}
		}
	})
}

// FuzzBuildRequest: any body of POST …/builds answers below 500.
func FuzzBuildRequest(f *testing.F) {
	f.Add(`{"builder":"tools:1","command":"x"}`)
	f.Add(`{"builder":"sha256:zz","command":"x","env":{"":""},"timeout":"-1s"}`)
	f.Add(`{"builder":":","command":"\u0000","output":"a/./b"}`)
	a := newBuildAPI(f)
	f.Fuzz(func(t *testing.T, body string) {
		// the stored snapshot, so the fuzzer reaches the other checks
		body = strings.Replace(body, `{`, fmt.Sprintf(`{"source_sha256":%q,`, a.source), 1)
		if code, out := a.do("POST", "/v1/deployments/demo/builds", "application/json", body); code >= 500 {
			t.Fatalf("POST builds %q: %d %s", body, code, out)
		}
	})
}

// TestBuildResultOnce: a result is taken once (a retried delivery gets
// 409 and makes no second version), and only from the host running it.
func TestBuildResultOnce(t *testing.T) {
	a := newBuildAPI(t)
	id := a.claimed(t)
	ctype, body := resultBody([]byte(`{"exit_code":0,"duration_ms":3}`), []byte("ok\n"), specTar("findex.html||built"), true)
	var other struct{ ID string }
	json.Unmarshal([]byte(a.must(t, "POST", "/v1/hosts", "", `{"hostname":"h2","region":"eu","driver":"runc","isolation":"container",
		"capacity":{"cpu":2,"memory_bytes":1073741824,"instances":4},"agent_url":"http://127.0.0.1:1","agent_key":"k"}`, 200)), &other)
	if code, out := a.do("POST", "/v1/hosts/"+other.ID+"/builds/"+id+"/result", ctype, body); code != 409 {
		t.Errorf("a result from another host: %d %s", code, out)
	}
	out := a.must(t, "POST", "/v1/hosts/"+a.host+"/builds/"+id+"/result", ctype, body, 200)
	var b meta.Build
	json.Unmarshal([]byte(out), &b)
	if b.State != meta.BuildSucceeded || b.VersionNumber != 1 || b.LogSHA256 == "" || b.LogBytes != 3 {
		t.Fatalf("the build after its result: %s", out)
	}
	if code, out := a.do("POST", "/v1/hosts/"+a.host+"/builds/"+id+"/result", ctype, body); code != 409 {
		t.Errorf("the same result again: %d %s", code, out)
	}
	var vs struct{ Versions []meta.Version }
	json.Unmarshal([]byte(a.must(t, "GET", "/v1/deployments/demo/versions", "", "", 200)), &vs)
	if len(vs.Versions) != 1 || vs.Versions[0].Build == nil || vs.Versions[0].Build.BuildID != id ||
		vs.Versions[0].Build.Timeout != "10m0s" || vs.Versions[0].Build.MemoryBytes != DefaultBuildMemory {
		t.Errorf("versions after two deliveries: %+v", vs.Versions)
	}
	if log := a.must(t, "GET", "/v1/builds/"+id+"/log", "", "", 200); log != "ok\n" {
		t.Errorf("the kept log %q", log)
	}
}
