package api

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/cairnhq/cairn/internal/release"
)

// specTar builds a tar from a spec: one entry a line, "<type><name>|<link>|<body>",
// type f (file), d (dir), l (symlink), h (hard link), c (char device),
// p (fifo), or any other byte taken as the typeflag. Headers the tar writer
// refuses are left out; the rest is the writer's bytes, unchecked.
func specTar(spec string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, line := range strings.Split(spec, "\n") {
		if line == "" {
			continue
		}
		name, link, _ := strings.Cut(line[1:], "|")
		link, body, _ := strings.Cut(link, "|")
		h := &tar.Header{Name: name, Linkname: link, Mode: 0o644, Format: tar.FormatPAX}
		switch line[0] {
		case 'f':
			h.Typeflag, h.Size = tar.TypeReg, int64(len(body))
		case 'd':
			h.Typeflag = tar.TypeDir
		case 'l':
			h.Typeflag = tar.TypeSymlink
		case 'h':
			h.Typeflag = tar.TypeLink
		case 'c':
			h.Typeflag = tar.TypeChar
		case 'p':
			h.Typeflag = tar.TypeFifo
		default:
			h.Typeflag = line[0]
		}
		if tw.WriteHeader(h) != nil {
			h.Format = tar.FormatGNU // non-UTF-8 names need it
			if tw.WriteHeader(h) != nil {
				continue
			}
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(body))
		}
	}
	tw.Close()
	return buf.Bytes()
}

// uploadBody turns a fuzz input into a request body: raw bytes, or a spec
// tar cut at cut and with the byte at flip inverted, plain, gzip or zstd.
func uploadBody(spec string, cut, flip uint16, mode uint8, raw []byte) []byte {
	body := raw
	if mode&1 == 0 {
		body = specTar(spec)
		if cut > 0 && int(cut) < len(body) {
			body = body[:cut]
		}
		if flip > 0 && len(body) > 0 {
			body[int(flip)%len(body)] ^= 0xff
		}
	}
	switch {
	case mode&2 != 0:
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write(body)
		zw.Close()
		return b.Bytes()
	case mode&4 != 0:
		zw, _ := zstd.NewWriter(nil)
		return zw.EncodeAll(body, nil)
	}
	return body
}

// checkUpload publishes body through the API handler (real SQLite store,
// real filesystem blob store) and fails on any 5xx: a malformed upload is
// the client's mistake, never cairn's. A release it accepts must verify.
func checkUpload(t *testing.T, a *API, body []byte) {
	t.Helper()
	req := httptest.NewRequest("POST", "/v1/deployments/demo/versions", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testToken)
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, req)
	switch {
	case rec.Code >= 500:
		t.Fatalf("upload answered %d: %s\nbody %q", rec.Code, rec.Body.Bytes(), body)
	case rec.Code == 201:
		var v struct {
			ArtifactSHA256 string `json:"artifact_sha256"`
		}
		json.Unmarshal(rec.Body.Bytes(), &v)
		rec = httptest.NewRecorder()
		get := httptest.NewRequest("GET", "/v1/releases/"+v.ArtifactSHA256+"/artifact", nil)
		get.Header.Set("Authorization", "Bearer "+testToken)
		a.ServeHTTP(rec, get)
		art := rec.Body.Bytes()
		if _, err := release.Verify(context.Background(), bytes.NewReader(art), int64(len(art))); err != nil {
			t.Fatalf("an accepted upload made a release that fails verify: %v\nbody %q", err, body)
		}
	case rec.Header().Get("Content-Type") != "application/problem+json":
		t.Fatalf("upload answered %d without a problem body", rec.Code)
	}
}

func newUploadAPI(t testing.TB) *API {
	a := newAPI(t)
	req := httptest.NewRequest("POST", "/v1/deployments", strings.NewReader(`{"name":"demo"}`))
	req.Header.Set("Authorization", "Bearer "+testToken)
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, req)
	if rec.Code != 201 {
		t.Fatalf("create: %d", rec.Code)
	}
	return a
}

var uploadSeeds = []string{
	"findex.html||hi\nfa/b||b",
	"la/up|..\nla/esc|up/../..",
	"la/esc|up/../..\nla/up|..",
	"lx|y\nly|x",
	"fcaf\xe9.html||x",
	"f" + strings.Repeat("n", 300) + "/x||x",
	"dx/y/\nfx||x",
	"dx/y/\nlx|y",
	"fx||x\nfx/y||y",
	"fa\nb||x",
	`fa\b||x`,
	"f/etc/passwd||x",
	"f../x||x",
	"hb|a",
	"cdev",
	"f||x",
	"d./\nf./a||x",
	"fa||x\nfa||y",
	"lroot|.\nlroot2|root/..",
}

// FuzzUploadNever5xx: no upload, however malformed, answers a 5xx.
func FuzzUploadNever5xx(f *testing.F) {
	for _, s := range uploadSeeds {
		f.Add(s, uint16(0), uint16(0), uint8(0), []byte(nil))
	}
	f.Add("findex.html||hello", uint16(700), uint16(0), uint8(0), []byte(nil))
	f.Add("findex.html||hello", uint16(0), uint16(300), uint8(2), []byte(nil))
	f.Add("", uint16(0), uint16(0), uint8(1), []byte("not a tar"))
	f.Add("", uint16(0), uint16(0), uint8(5), []byte{0x28, 0xb5, 0x2f, 0xfd, 0xff})
	a := newUploadAPI(f)
	f.Fuzz(func(t *testing.T, spec string, cut, flip uint16, mode uint8, raw []byte) {
		checkUpload(t, a, uploadBody(spec, cut, flip, mode, raw))
	})
}

// TestRandomUploadsNever5xx is the same property over random trees made of
// awkward names, types and links, cut and corrupted at random.
func TestRandomUploadsNever5xx(t *testing.T) {
	a := newUploadAPI(t)
	rng := rand.New(rand.NewPCG(10, 5))
	parts := []string{"a", "b", "x", "..", ".", "", "up", strings.Repeat("n", 300), "\xff", "é", "a\nb", `a\b`, "\x01", "index.html"}
	types := "fffdddllhcpx5"
	pick := func() string {
		var p []string
		for range 1 + rng.IntN(4) {
			p = append(p, parts[rng.IntN(len(parts))])
		}
		return strings.Join(p, "/")
	}
	for i := range 300 {
		var spec strings.Builder
		for range 1 + rng.IntN(6) {
			fmt.Fprintf(&spec, "%c%s|%s|%s\n", types[rng.IntN(len(types))], pick(), pick(), strings.Repeat("z", rng.IntN(600)))
		}
		var cut, flip uint16
		if rng.IntN(4) == 0 {
			cut = uint16(rng.IntN(4096))
		}
		if rng.IntN(4) == 0 {
			flip = uint16(1 + rng.IntN(4096))
		}
		body := uploadBody(spec.String(), cut, flip, uint8(rng.IntN(3)*2), nil)
		t.Run(fmt.Sprint(i), func(t *testing.T) { checkUpload(t, a, body) })
	}
}
