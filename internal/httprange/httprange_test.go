package httprange

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	many := "bytes=" + strings.Repeat("0-0,", MaxRanges) + "0-0"
	for _, tc := range []struct {
		h    string
		size int64
		want []Span
		err  error
	}{
		{"", 100, nil, nil},
		{"items=0-1", 100, nil, nil},
		{"bytes=", 100, nil, nil},
		{"bytes=abc", 100, nil, nil},
		{"bytes=1-x", 100, nil, nil},
		{"bytes=+1-2", 100, nil, nil},
		{"bytes=99999999999999999999-", 100, nil, nil},
		{"bytes=0-0", 100, []Span{{0, 1}}, nil},
		{"Bytes = 10-19", 100, []Span{{10, 10}}, nil},
		{"bytes=90-", 100, []Span{{90, 10}}, nil},
		{"bytes=90-1000", 100, []Span{{90, 10}}, nil},
		{"bytes=-10", 100, []Span{{90, 10}}, nil},
		{"bytes=-1000", 100, []Span{{0, 100}}, nil},
		{"bytes=0-1, ,5-6", 100, []Span{{0, 2}, {5, 2}}, nil},
		{"bytes=200-300,0-1", 100, []Span{{0, 2}}, nil},
		{"bytes=-0", 100, nil, ErrUnsatisfiable},
		{"bytes=-0", 0, nil, nil}, // an empty representation is served whole
		{"bytes=5-2", 0, nil, nil},
		{"bytes=100-", 100, nil, ErrUnsatisfiable},
		{"bytes=5-2", 100, nil, ErrUnsatisfiable},
		{"bytes=0-", 0, nil, nil},
		{"bytes=-5", 0, nil, nil},
		{many, 100, nil, nil},
		{"bytes=" + strings.Repeat("0-0,", MaxRanges-1) + "0-0", 100, spansOf(MaxRanges, Span{0, 1}), nil},
	} {
		got, err := Parse(tc.h, tc.size, MaxRanges)
		if !errors.Is(err, tc.err) || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Parse(%.40q, %d) = %v, %v; want %v, %v", tc.h, tc.size, got, err, tc.want, tc.err)
		}
	}
}

func spansOf(n int, s Span) []Span {
	out := make([]Span, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// TestRewriteServeContent: what http.ServeContent answers for a Range
// after Rewrite. Without Rewrite "bytes=-0" is a 206 whose Content-Range
// ends before it starts.
func TestRewriteServeContent(t *testing.T) {
	content := strings.Repeat("0123456789", 10)
	for _, tc := range []struct {
		rng, ifRange string
		status       int
		cr, body     string
	}{
		{"bytes=-0", "", 416, "bytes */100", ""},
		{"bytes=100-", "", 416, "bytes */100", ""},
		{"bytes=-0", `"v1"`, 416, "bytes */100", ""},
		{"bytes=-0", `"old"`, 200, "", content},
		{"bytes=-5", "", 206, "bytes 95-99/100", "56789"},
		{"bytes=10-12", "", 206, "bytes 10-12/100", "012"},
		{"bytes=x", "", 200, "", content},
		{"bytes=" + strings.Repeat("1-2,", MaxRanges) + "1-2", "", 200, "", content},
	} {
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Range", tc.rng)
		if tc.ifRange != "" {
			req.Header.Set("If-Range", tc.ifRange)
		}
		rec := httptest.NewRecorder()
		rec.Header().Set("Etag", `"v1"`)
		http.ServeContent(rec, Rewrite(req, 100, MaxRanges), "", time.Time{}, strings.NewReader(content))
		if rec.Code != tc.status || rec.Header().Get("Content-Range") != tc.cr || (tc.status != 416 && rec.Body.String() != tc.body) {
			t.Errorf("Range %.30q If-Range %q: %d %q %.20q; want %d %q %.20q", tc.rng, tc.ifRange,
				rec.Code, rec.Header().Get("Content-Range"), rec.Body.String(), tc.status, tc.cr, tc.body)
		}
	}
	if req := httptest.NewRequest("GET", "/", nil); Rewrite(req, 100, MaxRanges) != req {
		t.Error("a request without Range was copied")
	}
}

// FuzzParse: spans lie within the representation, are never empty, number
// at most max, and ServeContent given the rewritten header answers with a
// consistent status and Content-Range.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{"", "bytes=0-0", "bytes=500-1499", "bytes=500-", "bytes=-500", "bytes=500-0",
		"bytes=5000-10000", "bytes=0-1,5-6", "items=1-2", "bytes=-0", "bytes=9223372036854775807-",
		"bytes=0-1,,2-3", "BYTES=1-", "bytes=-9223372036854775808"} {
		f.Add(seed, int64(2048))
	}
	f.Add("bytes=-1", int64(0))
	f.Add("bytes=0-", int64(0)) // ServeContent serves an empty file whole, whatever the Range
	f.Add("bytes=5-2", int64(0))
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 || size > 1<<20 {
			return
		}
		spans, err := Parse(h, size, MaxRanges)
		if err != nil && (spans != nil || !errors.Is(err, ErrUnsatisfiable)) {
			t.Fatalf("%v with %v", err, spans)
		}
		if len(spans) > MaxRanges {
			t.Fatalf("%d spans", len(spans))
		}
		for _, s := range spans {
			if s.Start < 0 || s.Length < 1 || s.Start >= size || s.Length > size-s.Start {
				t.Fatalf("span %+v outside %d bytes", s, size)
			}
		}
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Range", h)
		rec := httptest.NewRecorder()
		http.ServeContent(rec, Rewrite(req, size, MaxRanges), "", time.Time{}, io.NewSectionReader(zeros{}, 0, size))
		cr := rec.Header().Get("Content-Range")
		switch {
		case err != nil:
			if rec.Code != 416 || cr != fmt.Sprintf("bytes */%d", size) {
				t.Fatalf("unsatisfiable: %d %q", rec.Code, cr)
			}
		case rec.Code == 206 && len(spans) == 1:
			var a, b, n int64
			if _, err := fmt.Sscanf(cr, "bytes %d-%d/%d", &a, &b, &n); err != nil || a > b || b >= size || n != size ||
				strconv.Itoa(rec.Body.Len()) != strconv.FormatInt(b-a+1, 10) {
				t.Fatalf("206 with Content-Range %q and %d bytes", cr, rec.Body.Len())
			}
		case rec.Code != 200 && rec.Code != 206:
			t.Fatalf("status %d for %d spans", rec.Code, len(spans))
		}
	})
}

type zeros struct{}

func (zeros) ReadAt(p []byte, off int64) (int, error) { clear(p); return len(p), nil }
