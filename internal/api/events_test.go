package api

import (
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/cairnhq/cairn/internal/meta"
)

// TestEventsHead: every event carries its hash and prev_hash, and head is
// the newest event of the whole log whatever the filter or page.
func TestEventsHead(t *testing.T) {
	a := newAPI(t)
	get := func(path string) (page struct {
		Events []meta.Event `json:"events"`
		Head   string       `json:"head"`
		HeadID int64        `json:"head_id"`
	}) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		a.ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
			t.Fatal(err)
		}
		return page
	}
	if p := get("/v1/events"); len(p.Events) != 0 || p.Head != "" || p.HeadID != 0 {
		t.Errorf("empty log: %+v", p)
	}
	for _, name := range []string{"one", "two"} {
		if r, _ := call(a, "POST", "/v1/deployments", `{"name":"`+name+`"}`, true); r.StatusCode != 201 {
			t.Fatalf("create: %d", r.StatusCode)
		}
	}
	all := get("/v1/events")
	if len(all.Events) != 2 {
		t.Fatalf("%d events, want 2", len(all.Events))
	}
	last := all.Events[1]
	if all.Head != last.Hash || all.HeadID != last.ID || last.PrevHash != all.Events[0].Hash ||
		meta.EventHash(last) != last.Hash {
		t.Errorf("head %s (%d), events %+v", all.Head, all.HeadID, all.Events)
	}
	for _, path := range []string{"/v1/events?limit=1", "/v1/events?deployment=one", "/v1/events?after=2"} {
		if p := get(path); p.Head != last.Hash || p.HeadID != last.ID {
			t.Errorf("%s: head %s (%d), want the whole log's %s (%d)", path, p.Head, p.HeadID, last.Hash, last.ID)
		}
	}
}
