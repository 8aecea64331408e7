package registry

import (
	"errors"
	"strings"
	"testing"
)

func FuzzParseManifest(f *testing.F) {
	for _, seed := range []struct{ ct, body string }{
		{mtOCIManifest, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"data":"e30="},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2,"urls":["https://x"]}],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"annotations":{"a":"b"}}`},
		{"", `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","artifactType":"application/x.y","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e","size":0,"platform":{"os":"linux","architecture":"arm64"}}]}`},
		{mtDockerList, `{"schemaVersion":2,"manifests":[]}`},
		{mtDockerManifest + "; charset=utf-8", `{"schemaVersion":2,"config":{"mediaType":"a/b","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2}}`},
		{"", `{"schemaVersion":1}`},
		{"", `null`},
		{"", `{"schemaVersion":2,"config":{"data":"!!"}}`},
	} {
		f.Add(seed.ct, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		m, err := parseManifest(ct, body)
		if err != nil {
			if !errors.Is(err, errManifestInvalid) {
				t.Fatalf("error %v does not wrap errManifestInvalid", err)
			}
			return
		}
		if m.size != int64(len(body)) {
			t.Fatalf("size %d, body %d bytes", m.size, len(body))
		}
		switch m.MediaType {
		case mtOCIManifest, mtDockerManifest:
			if m.Config == nil || m.Manifests != nil || m.Config.Size == nil {
				t.Fatalf("image manifest without a checked config: %+v", m)
			}
			_ = m.referrerType()
		case mtOCIIndex, mtDockerList:
			if m.Manifests == nil || m.Config != nil {
				t.Fatalf("index without manifests: %+v", m)
			}
		default:
			t.Fatalf("accepted media type %q", m.MediaType)
		}
		// Parsing what was accepted again with its media type agrees.
		again, err := parseManifest(m.MediaType, body)
		if err != nil || again.MediaType != m.MediaType || again.subject() != m.subject() {
			t.Fatalf("reparsing with %q: %v", m.MediaType, err)
		}
	})
}

func FuzzParseRange(f *testing.F) {
	for _, seed := range []string{"", "bytes=0-0", "bytes=500-1499", "bytes=500-", "bytes=-500", "bytes=500-0",
		"bytes=5000-10000", "bytes=0-1,5-6", "items=1-2", "bytes=-0", "bytes=9223372036854775807-"} {
		f.Add(seed, int64(2048))
	}
	f.Add("bytes=0-", int64(0))
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			return
		}
		off, n, partial, err := parseRange(h, size)
		if err != nil {
			if !errors.Is(err, errRangeInvalid) {
				t.Fatalf("error %v does not wrap errRangeInvalid", err)
			}
			return
		}
		if off < 0 || n < 0 || off > size || n > size-off {
			t.Fatalf("span %d+%d outside a %d-byte blob", off, n, size)
		}
		if !partial && (off != 0 || n != size) {
			t.Fatalf("whole blob answered as %d+%d of %d", off, n, size)
		}
		if partial && n == 0 {
			t.Fatalf("empty partial response")
		}
	})
}

func FuzzParseContentRange(f *testing.F) {
	for _, seed := range []string{"0-0", "0-1023", "1024-2047", "bytes 0-99/100", "bytes=5-9", "5-4", "-1-2", "a-b", "", "0-9223372036854775807"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, h string) {
		start, end, err := parseContentRange(h)
		if err != nil {
			if !errors.Is(err, errUploadInvalid) && !errors.Is(err, errRangeInvalid) {
				t.Fatalf("error %v wraps neither errUploadInvalid nor errRangeInvalid", err)
			}
			return
		}
		if start < 0 || end < start {
			t.Fatalf("range %d-%d accepted", start, end)
		}
	})
}

// FuzzParseRoute: any path parses to a known route with a valid repository
// name, or fails with NAME_UNKNOWN's or NAME_INVALID's error.
func FuzzParseRoute(f *testing.F) {
	for _, p := range []string{"/v2/", "/v2", "/v2/_catalog", "/v2/app/web/tags/list",
		"/v2/app/blobs/uploads/", "/v2/app/blobs/uploads/abc", "/v2/app/blobs/sha256:00",
		"/v2/app/manifests/v1", "/v2/app/referrers/sha256:00", "/v2/App/tags/list",
		"/v2/a//b/tags/list", "/v2/_catalog/x", "/v2/../x/tags/list", "/v3/app/manifests/v1"} {
		f.Add(p)
	}
	kinds := map[string]bool{routePing: true, routeCatalog: true, routeBlob: true, routeUploads: true,
		routeUpload: true, routeManifest: true, routeTags: true, routeReferrers: true}
	f.Fuzz(func(t *testing.T, path string) {
		rt, err := parseRoute(path)
		if err != nil {
			if !errors.Is(err, errNotFound) && !errors.Is(err, errNameInvalid) {
				t.Fatalf("parseRoute(%q): error %v is neither not-found nor name-invalid", path, err)
			}
			return
		}
		if !kinds[rt.kind] {
			t.Fatalf("parseRoute(%q): unknown kind %q", path, rt.kind)
		}
		if rt.kind == routePing || rt.kind == routeCatalog {
			if rt.name != "" || rt.ref != "" {
				t.Fatalf("parseRoute(%q) = %+v: a %s route names nothing", path, rt, rt.kind)
			}
			return
		}
		if checkName(rt.name) != nil || !strings.HasPrefix(path, "/v2/"+rt.name+"/") {
			t.Fatalf("parseRoute(%q) = %+v: invalid or foreign repository name", path, rt)
		}
	})
}
