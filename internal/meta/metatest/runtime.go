package metatest

import (
	"testing"

	"github.com/cairnhq/cairn/internal/meta"
)

// testVersionRuntime: a rootfs version keeps its runtime settings, read
// back by id, by number and in lists; a static version has none.
func testVersionRuntime(t *testing.T, s meta.Store) {
	d := &meta.Deployment{Name: "app", Kind: meta.KindRootfs}
	if err := s.CreateDeployment(t.Context(), d, "tester"); err != nil {
		t.Fatal(err)
	}
	rel := release("rootfs")
	rel.Kind = meta.KindRootfs
	rt := &meta.Runtime{Cmd: []string{"nginx", "-g", "daemon off;"}, Env: map[string]string{"A": "1"},
		Workdir: "/srv", User: "33:33", Port: 8080,
		HealthCheck: &meta.HealthCheck{Path: "/healthz", Interval: "10s", Timeout: "2s"}}
	v, err := s.CreateVersion(t.Context(), meta.NewVersion{DeploymentID: d.ID, SourceSHA256: sha("src"),
		Release: rel, Manifest: meta.Manifest{Files: 1, Entrypoint: "nginx -g daemon off;"}, Runtime: rt, Actor: "tester"})
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "CreateVersion runtime", v.Runtime, rt)
	sameJSON(t, "GetVersion", getVersion(t, s, v.ID), v)
	byNum, err := s.GetVersionByNumber(t.Context(), d.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "GetVersionByNumber", byNum, v)
	vs, err := s.ListVersions(t.Context(), d.ID, 10, 0)
	if err != nil || len(vs) != 1 {
		t.Fatalf("ListVersions: %v %v", vs, err)
	}
	sameJSON(t, "ListVersions", &vs[0], v)
	static := publish(t, s, newDeployment(t, s, "site").ID, "hello", false)
	if got := getVersion(t, s, static.ID); got.Runtime != nil {
		t.Errorf("a static version has runtime %+v", got.Runtime)
	}
}
