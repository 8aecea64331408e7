package problem

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
)

// TestNoSpace: a full disk (ENOSPC) or an exhausted quota (EDQUOT), however
// deeply wrapped, answers 507 insufficient-storage with a detail that says
// what to do and nothing about the server's paths.
func TestNoSpace(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT} {
		err := fmt.Errorf("store release abc: %w",
			fmt.Errorf("blob/fs: put sha256:abc: %w", &fs.PathError{Op: "write", Path: "/srv/data/blobs/tmp/put-1", Err: errno}))
		if !NoSpace(err) {
			t.Errorf("NoSpace(%v) = false", err)
		}
		rec := httptest.NewRecorder()
		Write(rec, httptest.NewRequest("POST", "/v1/deployments/x/versions", nil), nil, err)
		var body map[string]any
		if jerr := json.Unmarshal(rec.Body.Bytes(), &body); jerr != nil {
			t.Fatal(jerr)
		}
		if rec.Code != http.StatusInsufficientStorage || body["type"] != TypeBase+"insufficient-storage" {
			t.Errorf("%v: %d %v, want 507 insufficient-storage", errno, rec.Code, body)
		}
		if d, _ := body["detail"].(string); !strings.Contains(d, "space") || strings.Contains(d, "/srv") {
			t.Errorf("detail %q: want a readable reason without server paths", d)
		}
	}
	if NoSpace(fmt.Errorf("x: %w", syscall.EIO)) {
		t.Error("NoSpace(EIO) = true")
	}
}
