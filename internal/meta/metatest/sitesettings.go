package metatest

import (
	"testing"

	"github.com/cairnhq/cairn/internal/meta"
)

// testSiteSettings: spa, clean_urls and proxy_rewrites are off on a new deployment, set
// by SetPolicy (one update event with before/after), read back by every
// getter, and left alone when a policy does not name them.
func testSiteSettings(t *testing.T, s meta.Store) {
	p := capability[meta.Policies](t, s)
	d := &meta.Deployment{Name: "site", Kind: meta.KindStatic}
	if err := s.CreateDeployment(t.Context(), d, "alice"); err != nil {
		t.Fatal(err)
	}
	if d.SPA || d.CleanURLs || d.ProxyRewrites {
		t.Fatalf("new deployment %+v: want spa, clean_urls and proxy_rewrites off", d)
	}
	yes := true
	got, err := p.SetPolicy(t.Context(), d.ID, meta.Policy{SPA: &yes, CleanURLs: &yes, ProxyRewrites: &yes}, "bob")
	if err != nil || !got.SPA || !got.CleanURLs || !got.ProxyRewrites {
		t.Fatalf("SetPolicy = %+v, %v", got, err)
	}
	sameJSON(t, "stored after SetPolicy", getDeployment(t, s, d.ID), got)
	e := lastEvent(t, s, d.ID)
	if e.Action != meta.ActionDeploymentUpdate || e.Actor != "bob" {
		t.Errorf("last event %+v", e)
	}
	got, err = p.SetPolicy(t.Context(), d.ID, meta.Policy{RetentionDays: ptr(9)}, "bob")
	if err != nil || !got.SPA || !got.CleanURLs || !got.ProxyRewrites || got.RetentionDays != 9 {
		t.Fatalf("SetPolicy(retention) = %+v, %v", got, err)
	}
	no := false
	if got, err = p.SetPolicy(t.Context(), d.ID, meta.Policy{SPA: &no, ProxyRewrites: &no}, "bob"); err != nil || got.SPA || !got.CleanURLs || got.ProxyRewrites {
		t.Fatalf("SetPolicy(spa off) = %+v, %v", got, err)
	}
	list, err := s.ListDeployments(t.Context())
	if err != nil || len(list) != 1 || list[0].SPA || !list[0].CleanURLs || list[0].ProxyRewrites {
		t.Fatalf("ListDeployments = %+v, %v", list, err)
	}
}
