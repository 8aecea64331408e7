package meta

import (
	"encoding/json"
	"testing"
	"time"
)

// TestEncodeEvent pins the canonical encoding that docs/design.md
// ("Audit log") specifies: changing it breaks every stored chain.
func TestEncodeEvent(t *testing.T) {
	e := Event{
		ID: 42, At: time.Date(2024, 5, 1, 12, 0, 0, 1500, time.FixedZone("x", 3600)),
		Actor: "al\"i\\ce\n\x01<&>ü", Action: ActionActivate, DeploymentID: "dep_1", VersionID: "ver_2",
		Detail: json.RawMessage(`{"before":null,"after":"ver_2"}`), PrevHash: "ab",
		Hash: "ignored",
	}
	want := `{"action":"activate","actor":"al\"i\\ce\n\u0001<&>ü","at":"2024-05-01T11:00:00.000001500Z",` +
		`"deployment_id":"dep_1","detail":"{\"before\":null,\"after\":\"ver_2\"}","hostname":"","id":42,` +
		`"prev_hash":"ab","release_sha256":"","version_id":"ver_2"}`
	if got := string(EncodeEvent(e)); got != want {
		t.Errorf("EncodeEvent:\n got %s\nwant %s", got, want)
	}
	if !json.Valid(EncodeEvent(e)) {
		t.Error("not JSON")
	}
	const wantHash = "faf7c4f626cdc5f386b47646d5395943924b795d218eb61a673ae632cca20d50"
	if got := EventHash(e); got != wantHash {
		t.Errorf("EventHash = %s, want %s", got, wantHash)
	}
	e.Detail = nil
	var m map[string]any
	if err := json.Unmarshal(EncodeEvent(e), &m); err != nil || m["detail"] != nil || m["actor"] != e.Actor {
		t.Errorf("no detail: %v %v", m, err)
	}
}

// TestEncodeEventOneToOne: bytes that are not UTF-8 are kept, so two
// different values never encode alike.
func TestEncodeEventOneToOne(t *testing.T) {
	a, b := Event{Actor: "\xff"}, Event{Actor: "\xfe"}
	if string(EncodeEvent(a)) == string(EncodeEvent(b)) {
		t.Error("invalid UTF-8 collapsed")
	}
	if EventHash(Event{Detail: json.RawMessage(`{}`)}) == EventHash(Event{}) {
		t.Error("detail {} and none hash alike")
	}
}
