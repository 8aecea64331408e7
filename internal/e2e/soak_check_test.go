package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/cairnhq/cairn/internal/meta"
	"github.com/cairnhq/cairn/internal/release"
)

// check runs after the soak: every version not collected has its release
// bytes, which hash to its sha256 and verify as a release; every collected
// version was neither active nor pinned when its collect event was written.
// It returns the number of collect events.
func (s *soak) check(t *testing.T) int {
	t.Helper()
	verified := map[string]bool{}
	for _, d := range s.deps {
		for _, v := range s.versions(t, d) {
			if v.Status == meta.StatusCollected || verified[v.ArtifactSHA256] {
				continue
			}
			if err := s.verify(v.ArtifactSHA256); err != nil {
				// The server's own GC loop still runs (every 30 ms): a
				// version collected after it was listed is not an error.
				var now meta.Version
				if code := s.call("GET", "/v1/versions/"+v.ID, nil, &now); code == 200 && now.Status == meta.StatusCollected {
					continue
				}
				t.Errorf("%s v%d (%s) is visible without its bytes: %v", d, v.VersionNumber, v.Status, err)
			}
			verified[v.ArtifactSHA256] = true
		}
	}
	active := map[string]string{} // deployment → active version
	pinned := map[string]string{} // hostname → pinned version ("" follows)
	collects := 0
	for after := int64(0); ; {
		var out struct{ Events []meta.Event }
		if code := s.call("GET", fmt.Sprintf("/v1/events?after=%d&limit=1000", after), nil, &out); code != 200 {
			t.Fatalf("events: %d", code)
		}
		for _, ev := range out.Events {
			after = ev.ID
			switch ev.Action {
			case meta.ActionActivate, meta.ActionRollback:
				active[ev.DeploymentID] = ev.VersionID
			case meta.ActionDomainAdd, meta.ActionDomainRepoint:
				pinned[ev.Hostname] = ev.VersionID
			case meta.ActionCollect:
				collects++
				if active[ev.DeploymentID] == ev.VersionID {
					t.Errorf("event %d collected the active version %s", ev.ID, ev.VersionID)
				}
				for h, v := range pinned {
					if v == ev.VersionID {
						t.Errorf("event %d collected %s, pinned by %s", ev.ID, v, h)
					}
				}
			}
		}
		if len(out.Events) < 1000 {
			return collects
		}
	}
}

// versions lists every version of dep.
func (s *soak) versions(t *testing.T, dep string) []meta.Version {
	var all []meta.Version
	for cursor := ""; ; {
		var out struct {
			Versions   []meta.Version `json:"versions"`
			NextCursor string         `json:"next_cursor"`
		}
		if code := s.call("GET", "/v1/deployments/"+dep+"/versions?limit=100&cursor="+cursor, nil, &out); code != 200 {
			t.Fatalf("versions of %s: %d", dep, code)
		}
		all = append(all, out.Versions...)
		if cursor = out.NextCursor; cursor == "" {
			return all
		}
	}
}

// verify fetches a release's artifact and checks it.
func (s *soak) verify(sha string) error {
	req, _ := http.NewRequest("GET", s.e.api+"/v1/releases/"+sha+"/artifact", nil)
	req.Header.Set("Authorization", "Bearer "+s.e.token)
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("artifact: %d %.100s %v", resp.StatusCode, b, err)
	}
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != sha {
		return fmt.Errorf("artifact hashes to %x", sum)
	}
	_, err = release.Verify(s.e.t.Context(), bytes.NewReader(b), int64(len(b)))
	return err
}
