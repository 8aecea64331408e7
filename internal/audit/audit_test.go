package audit

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

// chain builds n chained events with ids from first, as a store would.
func chain(first int64, n int, prev string) []meta.Event {
	var out []meta.Event
	at := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for i := range n {
		e := meta.Event{
			ID: first + int64(i), At: at.Add(time.Duration(i) * time.Second), Actor: "tester",
			Action: meta.ActionActivate, DeploymentID: "dep_1",
			Detail: json.RawMessage(`{"before":null,"after":"ver_1"}`), PrevHash: prev,
		}
		e.Hash = meta.EventHash(e)
		prev = e.Hash
		out = append(out, e)
	}
	return out
}

func wantBreak(t *testing.T, what string, evs []meta.Event, id int64, reason string) {
	t.Helper()
	_, err := Verify(evs)
	var b *Break
	if !errors.As(err, &b) || b.ID != id || !strings.Contains(b.Reason, reason) {
		t.Errorf("%s: %v, want a break at event %d (%s)", what, err, id, reason)
	}
}

func TestVerify(t *testing.T) {
	good := chain(1, 6, "")
	c, err := Verify(good)
	if err != nil || c.Events != 6 || c.Head != good[5].Hash || c.FirstID != 1 || c.LastID != 6 {
		t.Fatalf("good chain: %+v, %v", c, err)
	}
	if c, err := Verify(nil); err != nil || c.Events != 0 || c.Head != "" {
		t.Errorf("empty log: %+v, %v", c, err)
	}

	edit := func(f func(evs []meta.Event) []meta.Event) []meta.Event {
		return f(append([]meta.Event(nil), good...))
	}
	wantBreak(t, "actor edited", edit(func(e []meta.Event) []meta.Event { e[2].Actor = "mallory"; return e }),
		3, "does not match its contents")
	wantBreak(t, "detail edited", edit(func(e []meta.Event) []meta.Event { e[3].Detail = nil; return e }),
		4, "does not match its contents")
	wantBreak(t, "edited and rehashed", edit(func(e []meta.Event) []meta.Event {
		e[2].Actor = "mallory"
		e[2].Hash = meta.EventHash(e[2])
		return e
	}), 4, "is not the hash")
	wantBreak(t, "removed", edit(func(e []meta.Event) []meta.Event { return append(e[:2], e[3:]...) }),
		4, "is not the hash")
	wantBreak(t, "first removed", good[1:], 2, "no event precedes it")
	wantBreak(t, "hash blanked", edit(func(e []meta.Event) []meta.Event { e[4].Hash = ""; return e }),
		5, "no hash")
	wantBreak(t, "swapped", edit(func(e []meta.Event) []meta.Event { e[1], e[2] = e[2], e[1]; return e }),
		3, "is not the hash")
	wantBreak(t, "repeated", edit(func(e []meta.Event) []meta.Event { return append(e[:3], e[1]) }),
		2, "does not follow")
	wantBreak(t, "hashes of a prefix blanked", edit(func(e []meta.Event) []meta.Event {
		e[0].Hash, e[1].Hash, e[1].PrevHash = "", "", ""
		return e
	}), 3, "is not the hash")
}

// TestVerifyLegacy: events from before the chain existed have no hashes;
// the chain starts at the first hashed one, whose prev_hash is "".
func TestVerifyLegacy(t *testing.T) {
	evs := []meta.Event{{ID: 1, Action: "publish"}, {ID: 3, Action: "activate"}}
	evs = append(evs, chain(4, 3, "")...)
	c, err := Verify(evs)
	if err != nil || c.Events != 5 || c.Unhashed != 2 || c.FirstID != 4 {
		t.Errorf("legacy prefix: %+v, %v", c, err)
	}
}

// pages serves evs in pages, with the head of the whole log.
func pages(evs []meta.Event) Source {
	return SourceFunc(func(_ context.Context, after int64, limit int) (*Page, error) {
		p := &Page{}
		if len(evs) > 0 {
			p.Head, p.HeadID = evs[len(evs)-1].Hash, evs[len(evs)-1].ID
		}
		for _, e := range evs {
			if e.ID > after && len(p.Events) < limit {
				p.Events = append(p.Events, e)
			}
		}
		return p, nil
	})
}

func TestWalk(t *testing.T) {
	ctx := context.Background()
	evs := chain(1, 2*PageSize+10, "")
	r, err := Walk(ctx, pages(evs), evs[500].Hash)
	if err != nil || r.Events != len(evs) || r.Head != evs[len(evs)-1].Hash || r.RecordedID != 501 {
		t.Fatalf("Walk: %+v, %v", r, err)
	}
	if _, err := Walk(ctx, pages(evs), strings.Repeat("0", 64)); !errors.Is(err, ErrHeadNotFound) {
		t.Errorf("unknown recorded head: %v", err)
	}
	bad := append([]meta.Event(nil), evs...)
	bad[1500].Actor = "mallory"
	var b *Break
	if _, err := Walk(ctx, pages(bad), ""); !errors.As(err, &b) || b.ID != 1501 {
		t.Errorf("edited event: %v", err)
	}
	// A head that disagrees with the last event listed.
	lying := SourceFunc(func(ctx context.Context, after int64, limit int) (*Page, error) {
		p, err := pages(evs).EventPage(ctx, after, limit)
		p.Head = strings.Repeat("1", 64)
		return p, err
	})
	if _, err := Walk(ctx, lying, ""); !errors.As(err, &b) || b.ID != int64(len(evs)) {
		t.Errorf("lying head: %v", err)
	}
	// Events appended while walking: the walk reads on to the new head.
	grown := chain(1, 12, "")
	calls := 0
	growing := SourceFunc(func(ctx context.Context, after int64, limit int) (*Page, error) {
		calls++
		if calls == 1 {
			return pages(grown[:5]).EventPage(ctx, after, limit)
		}
		return pages(grown).EventPage(ctx, after, limit)
	})
	if r, err := Walk(ctx, growing, ""); err != nil || r.Events != 12 {
		t.Errorf("growing log: %+v, %v", r, err)
	}
}
