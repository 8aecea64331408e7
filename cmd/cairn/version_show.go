package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/internal/meta"
)

// versionCmd is `cairn version show NAME N`.
func (a *app) versionCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Show one version",
		Args:  exactArgs(0),
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	show := &cobra.Command{
		Use:               "show NAME N",
		Short:             "Show a version's record, its URLs and the domains that serve it",
		Args:              exactArgs(2),
		ValidArgsFunction: a.completeDeployments,
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.ParseInt(args[1], 10, 64)
			if err != nil || n < 1 {
				return fmt.Errorf("N: %q is not a version number", args[1])
			}
			c := a.client()
			v, err := c.GetVersion(cmd.Context(), args[0], n)
			if err != nil {
				return err
			}
			doms, err := c.ListDomains(cmd.Context(), v.DeploymentID)
			if err != nil {
				return err
			}
			hosts := servingHosts(v, doms)
			if a.json {
				return printJSON(a.stdout, struct {
					*meta.Version
					Domains []string `json:"domains"`
				}{v, hosts})
			}
			m := v.ArtifactManifest
			w := a.stdout
			fmt.Fprintf(w, "%s v%d  %s\n", args[0], v.VersionNumber, v.Status)
			fmt.Fprintf(w, "id:          %s\n", v.ID)
			fmt.Fprintf(w, "created:     %s\n", formatTime(v.CreatedAt))
			fmt.Fprintf(w, "release:     sha256 %s\n", v.ArtifactSHA256)
			fmt.Fprintf(w, "files:       %d (%s), entrypoint %s\n", m.Files, humanBytes(m.TotalBytes), m.Entrypoint)
			if v.URL != "" {
				fmt.Fprintf(w, "url:         %s\n", v.URL)
			}
			if v.PreviewURL != "" {
				fmt.Fprintf(w, "preview:     %s\n", v.PreviewURL)
			}
			printRuntime(w, v.Runtime)
			printVersionBuild(w, v)
			for _, warn := range v.Warnings {
				fmt.Fprintf(w, "warning:     %s\n", warn)
			}
			dl := "-"
			if len(hosts) > 0 {
				dl = strings.Join(hosts, ", ")
			}
			_, err = fmt.Fprintf(w, "domains:     %s\n", dl)
			return err
		},
	}
	cmd.AddCommand(show)
	return cmd
}

// printRuntime prints how a rootfs version runs (nothing for static
// versions): the command as a JSON array (the words exactly), the
// environment sorted by name, "-" for an unset workdir or user (the
// image's or the root's default).
func printRuntime(w io.Writer, rt *meta.Runtime) {
	if rt == nil {
		return
	}
	cmd, _ := json.Marshal(rt.Cmd)
	fmt.Fprintf(w, "cmd:         %s\n", cmd)
	for _, k := range slices.Sorted(maps.Keys(rt.Env)) {
		fmt.Fprintf(w, "env:         %s=%s\n", k, rt.Env[k])
	}
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	fmt.Fprintf(w, "workdir:     %s\n", dash(rt.Workdir))
	fmt.Fprintf(w, "user:        %s\n", dash(rt.User))
	fmt.Fprintf(w, "port:        %d\n", rt.Port)
	if h := rt.HealthCheck; h != nil {
		fmt.Fprintf(w, "health:      GET %s every %s, timeout %s\n", h.Path, h.Interval, h.Timeout)
	} else {
		fmt.Fprintf(w, "health:      -\n")
	}
}

// servingHosts are the domains that serve v: pinned to it, or following
// the active version while v is active.
func servingHosts(v *meta.Version, doms []meta.Domain) []string {
	hosts := []string{}
	for _, d := range doms {
		if d.VersionID != nil && *d.VersionID == v.ID || d.VersionID == nil && v.Status == meta.StatusActive {
			hosts = append(hosts, d.Hostname)
		}
	}
	return hosts
}
