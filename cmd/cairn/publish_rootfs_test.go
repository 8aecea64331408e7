package main

import (
	"strings"
	"testing"
)

// Runtime flags and kinds are checked before anything is uploaded, with one
// readable line.
func TestPublishRootfsFlags(t *testing.T) {
	api := newFakeAPI(t)
	dir := siteDir(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--cmd", "nginx"}, "cairn: --cmd, --env, --port, --user, --workdir and --health-* need --kind rootfs\n"},
		{[]string{"--kind", "oci"}, `cairn: --kind "oci": want static or rootfs` + "\n"},
		{[]string{"--kind", "rootfs", "--env", "NOVALUE"}, `cairn: --env "NOVALUE": want K=V` + "\n"},
		{[]string{"--kind", "rootfs", "--cmd", `["a",`}, "cairn: --cmd: not a JSON array of strings"},
		{[]string{"--kind", "rootfs", "--health-timeout", "1s"}, "cairn: --health-interval and --health-timeout need --health-path\n"},
		{[]string{"--kind", "rootfs"}, "cairn: deployment demo has kind static, not rootfs\n"},
	} {
		args := append([]string{"publish", dir, "--deployment", "demo", "--api", api.URL, "--token", "t"}, c.args...)
		_, stderr, code := cli(t, nil, args...)
		if code != 1 || !strings.HasPrefix(stderr, c.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q, want %q", c.args, code, stderr, c.want)
		}
	}
	for _, r := range api.requests() {
		if strings.HasSuffix(r.Path, "/versions") && r.Method == "POST" {
			t.Errorf("uploaded: %+v", r)
		}
	}
}
