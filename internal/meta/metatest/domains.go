package metatest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

var domainTests = []test{
	{"Domain/CreateGet", testDomainCreateGet},
	{"Domain/Duplicate", testDomainDuplicate},
	{"Domain/Repoint", testDomainRepoint},
	{"Domain/HTTPS", testDomainHTTPS},
	{"Domain/OtherDeployment", testDomainOtherDeployment},
	{"Domain/NotFound", testDomainNotFound},
	{"Domain/Collected", testDomainCollected},
}

func addDomain(t *testing.T, s meta.Store, host, depID string, versionID *string) *meta.Domain {
	t.Helper()
	d := &meta.Domain{Hostname: host, DeploymentID: depID, VersionID: versionID}
	if err := s.CreateDomain(t.Context(), d, "tester"); err != nil {
		t.Fatalf("CreateDomain(%s): %v", host, err)
	}
	return d
}

func getDomain(t *testing.T, s meta.Store, host string) *meta.Domain {
	t.Helper()
	return must(s.GetDomain(t.Context(), host))(t, "GetDomain("+host+")")
}

func testDomainCreateGet(t *testing.T, s meta.Store) {
	dep := newDeployment(t, s, "site")
	v1 := publish(t, s, dep.ID, "one", true)
	follow := addDomain(t, s, "www.example.com", dep.ID, nil)
	pinned := addDomain(t, s, "v1.example.com", dep.ID, &v1.ID)
	wantUTC(t, "CreatedAt", follow.CreatedAt)
	if !follow.UpdatedAt.Equal(follow.CreatedAt) || follow.VersionID != nil {
		t.Errorf("following domain = %+v", follow)
	}
	wantPtr(t, "pinned version_id", pinned.VersionID, v1.ID)
	sameJSON(t, "GetDomain following", getDomain(t, s, "www.example.com"), follow)
	sameJSON(t, "GetDomain pinned", getDomain(t, s, "v1.example.com"), pinned)

	ds, err := s.ListDomains(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "ListDomains", ds, []meta.Domain{*pinned, *follow})

	e := lastEvent(t, s, dep.ID)
	if e.Action != meta.ActionDomainAdd || e.Hostname != "v1.example.com" || e.Actor != "tester" {
		t.Errorf("last event = %+v, want domain.add of v1.example.com", e)
	}
}

func testDomainDuplicate(t *testing.T, s meta.Store) {
	a, b := newDeployment(t, s, "a"), newDeployment(t, s, "b")
	addDomain(t, s, "example.com", a.ID, nil)
	err := s.CreateDomain(t.Context(), &meta.Domain{Hostname: "example.com", DeploymentID: b.ID}, "x")
	wantErr(t, "taken hostname", err, meta.ErrConflict)
	if d := getDomain(t, s, "example.com"); d.DeploymentID != a.ID {
		t.Errorf("domain moved to %s after a conflict", d.DeploymentID)
	}
}

func testDomainRepoint(t *testing.T, s meta.Store) {
	ctx := t.Context()
	dep := newDeployment(t, s, "site")
	v1 := publish(t, s, dep.ID, "one", true)
	v2 := publish(t, s, dep.ID, "two", true)
	d := addDomain(t, s, "example.com", dep.ID, &v1.ID)

	step := func(name string, to *string, before string) {
		t.Helper()
		got, err := s.SetDomainVersion(ctx, "example.com", to, "alice")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		wantPtr(t, name+": version_id", got.VersionID, str0(to))
		if got.UpdatedAt.Before(d.CreatedAt) || !got.CreatedAt.Equal(d.CreatedAt) {
			t.Errorf("%s: created %v updated %v, domain created %v", name, got.CreatedAt, got.UpdatedAt, d.CreatedAt)
		}
		sameJSON(t, name+": stored", getDomain(t, s, "example.com"), got)
		e := lastEvent(t, s, dep.ID)
		if e.Action != meta.ActionDomainRepoint || e.Hostname != "example.com" || e.Actor != "alice" {
			t.Errorf("%s: last event = %+v, want domain.repoint", name, e)
		}
		b, a := beforeAfter(t, e)
		wantPtr(t, name+": detail.before", b, before)
		wantPtr(t, name+": detail.after", a, str0(to))
	}
	step("follow active", nil, v1.ID)
	step("pin v2", &v2.ID, "")
	step("pin v1", &v1.ID, v2.ID)
}

// str0 is *p, or "" for nil.
func str0(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func testDomainOtherDeployment(t *testing.T, s meta.Store) {
	a, b := newDeployment(t, s, "a"), newDeployment(t, s, "b")
	publish(t, s, a.ID, "a1", true)
	vb := publish(t, s, b.ID, "b1", true)
	err := s.CreateDomain(t.Context(), &meta.Domain{Hostname: "a.example.com", DeploymentID: a.ID, VersionID: &vb.ID}, "x")
	wantErr(t, "CreateDomain pinned to another deployment's version", err, meta.ErrInvalid)
	addDomain(t, s, "a.example.com", a.ID, nil)
	_, err = s.SetDomainVersion(t.Context(), "a.example.com", &vb.ID, "x")
	wantErr(t, "SetDomainVersion to another deployment's version", err, meta.ErrInvalid)
	if d := getDomain(t, s, "a.example.com"); d.VersionID != nil {
		t.Errorf("domain pinned to %s after a refused repoint", *d.VersionID)
	}
}

func testDomainNotFound(t *testing.T, s meta.Store) {
	ctx := t.Context()
	dep := newDeployment(t, s, "site")
	_, err := s.GetDomain(ctx, "nope.example.com")
	wantErr(t, "GetDomain", err, meta.ErrNotFound)
	_, err = s.SetDomainVersion(ctx, "nope.example.com", nil, "x")
	wantErr(t, "SetDomainVersion", err, meta.ErrNotFound)
	err = s.CreateDomain(ctx, &meta.Domain{Hostname: "a.example.com", DeploymentID: "dep_nope"}, "x")
	wantErr(t, "CreateDomain for an unknown deployment", err, meta.ErrNotFound)
	missing := "ver_nope"
	err = s.CreateDomain(ctx, &meta.Domain{Hostname: "b.example.com", DeploymentID: dep.ID, VersionID: &missing}, "x")
	wantErr(t, "CreateDomain pinned to an unknown version", err, meta.ErrNotFound)
	if ds, _ := s.ListDomains(ctx); len(ds) != 0 {
		t.Errorf("failed creates left %d domains", len(ds))
	}
	if evs := events(t, s, meta.EventFilter{}); strings.Contains(actions(evs), meta.ActionDomainAdd) {
		t.Errorf("failed creates appended events: %s", actions(evs))
	}
}

func testDomainCollected(t *testing.T, s meta.Store) {
	ctx := t.Context()
	c := collector(t, s)
	dep := newDeployment(t, s, "site")
	v1 := publish(t, s, dep.ID, "one", true)
	publish(t, s, dep.ID, "two", true)
	if err := c.MarkCollected(ctx, v1.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	err := s.CreateDomain(ctx, &meta.Domain{Hostname: "example.com", DeploymentID: dep.ID, VersionID: &v1.ID}, "x")
	wantErr(t, "CreateDomain pinned to a collected version", err, meta.ErrGone)
	addDomain(t, s, "example.com", dep.ID, nil)
	_, err = s.SetDomainVersion(ctx, "example.com", &v1.ID, "x")
	wantErr(t, "SetDomainVersion to a collected version", err, meta.ErrGone)

	v3 := publish(t, s, dep.ID, "three", false)
	if _, err := s.SetDomainVersion(ctx, "example.com", &v3.ID, "x"); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "collect a pinned version", c.MarkCollected(ctx, v3.ID, time.Now()), meta.ErrInvalid)
}

// testDomainHTTPS: a domain's HTTPS settings start off, are set (and
// stored) by SetDomainHTTPS with a domain.https event, and survive a
// repoint.
func testDomainHTTPS(t *testing.T, s meta.Store) {
	ctx := t.Context()
	dep := newDeployment(t, s, "site")
	v1 := publish(t, s, dep.ID, "one", true)
	d := addDomain(t, s, "secure.example.com", dep.ID, nil)
	if d.HTTPSRedirect || d.HSTS {
		t.Fatalf("new domain = %+v, want HTTPS settings off", d)
	}
	got, err := s.SetDomainHTTPS(ctx, "Secure.Example.com", true, true, "alice")
	if err != nil || !got.HTTPSRedirect || !got.HSTS {
		t.Fatalf("SetDomainHTTPS = %+v, %v", got, err)
	}
	sameJSON(t, "stored", getDomain(t, s, "secure.example.com"), got)
	if e := lastEvent(t, s, dep.ID); e.Action != meta.ActionDomainHTTPS || e.Hostname != "secure.example.com" || e.Actor != "alice" {
		t.Fatalf("last event = %+v, want domain.https", e)
	}
	if got, err = s.SetDomainVersion(ctx, "secure.example.com", &v1.ID, "alice"); err != nil || !got.HTTPSRedirect || !got.HSTS {
		t.Fatalf("after repoint: %+v, %v", got, err)
	}
	if got, err = s.SetDomainHTTPS(ctx, "secure.example.com", false, true, "alice"); err != nil || got.HTTPSRedirect || !got.HSTS {
		t.Fatalf("redirect off: %+v, %v", got, err)
	}
	if _, err := s.SetDomainHTTPS(ctx, "nope.example.com", true, false, "alice"); !errors.Is(err, meta.ErrNotFound) {
		t.Fatalf("unknown domain: %v, want ErrNotFound", err)
	}
}
