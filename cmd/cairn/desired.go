package main

import (
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/cairnhq/cairn/internal/meta"
)

// desiredFlags are the desired-state flags of `cairn deployment set`.
type desiredFlags struct {
	replicas, minHealthy                 int
	cpu                                  float64
	memory, regions, isolation, autostop string
	healthPath, healthInterval           string
	healthTimeout                        string
}

func (f *desiredFlags) bind(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.IntVar(&f.replicas, "replicas", 0, "dynamic deployments: instances of the active version (as cairn scale)")
	fl.Float64Var(&f.cpu, "cpu", 0, "dynamic deployments: cores per instance (0: the default, 1)")
	fl.StringVar(&f.memory, "memory", "", "dynamic deployments: memory per instance, e.g. 256MiB (0: the default, 512MiB)")
	fl.StringVar(&f.regions, "regions", "", "dynamic deployments: spread, REGION=N,… (instances per region), or none")
	fl.IntVar(&f.minHealthy, "min-healthy", 0, "dynamic deployments: healthy new instances a rollout waits for (-1: all replicas)")
	fl.StringVar(&f.isolation, "isolation", "", "dynamic deployments: container or microvm (never placed on a weaker one)")
	fl.StringVar(&f.autostop, "autostop", "", "dynamic deployments: stop idle instances after this long, e.g. 15m (none: off)")
	fl.StringVar(&f.healthPath, "health-path", "", "dynamic deployments: the health check's path (overrides the version's)")
	fl.StringVar(&f.healthInterval, "health-interval", "", "dynamic deployments: the health check's interval, e.g. 2s")
	fl.StringVar(&f.healthTimeout, "health-timeout", "", "dynamic deployments: the health check's timeout, e.g. 1s")
}

// patch is the PATCH body of the flags given.
func (f *desiredFlags) patch(cmd *cobra.Command) (map[string]any, error) {
	fl := cmd.Flags()
	p := map[string]any{}
	if fl.Changed("replicas") {
		if f.replicas < 0 {
			return nil, fmt.Errorf("--replicas: %d is negative", f.replicas)
		}
		p["replicas"] = f.replicas
	}
	if fl.Changed("cpu") {
		p["cpu"] = f.cpu
	}
	if fl.Changed("memory") {
		n := int64(0)
		if f.memory != "0" {
			var err error
			if n, err = parseSize(f.memory); err != nil {
				return nil, fmt.Errorf("--memory: %w", err)
			}
		}
		p["memory_bytes"] = n
	}
	if fl.Changed("regions") {
		if f.regions == "none" || f.regions == "" {
			p["regions"] = nil
		} else {
			r, err := meta.ParseRegions(f.regions)
			if err != nil {
				return nil, fmt.Errorf("--regions: %w", err)
			}
			p["regions"] = r
		}
	}
	if fl.Changed("min-healthy") {
		if f.minHealthy < 0 {
			p["min_healthy"] = nil
		} else {
			p["min_healthy"] = f.minHealthy
		}
	}
	if fl.Changed("isolation") {
		p["isolation"] = f.isolation
	}
	if fl.Changed("autostop") {
		if f.autostop == "none" {
			f.autostop = ""
		}
		p["autostop"] = f.autostop
	}
	if fl.Changed("health-path") || fl.Changed("health-interval") || fl.Changed("health-timeout") {
		p["health_check"] = meta.HealthCheck{Path: f.healthPath, Interval: f.healthInterval, Timeout: f.healthTimeout}
	}
	return p, nil
}

// printDesired prints a desired state on one line.
func printDesired(w io.Writer, name string, d *meta.Desired) {
	mem, cpu, minH, iso := "default", "default", "all", d.Isolation
	if d.MemoryBytes > 0 {
		mem = humanBytes(d.MemoryBytes)
	}
	if d.CPU > 0 {
		cpu = strconv.FormatFloat(d.CPU, 'f', -1, 64)
	}
	if d.MinHealthy != nil {
		minH = strconv.Itoa(*d.MinHealthy)
	}
	if iso == "" {
		iso = "container"
	}
	fmt.Fprintf(w, "%s: %d replicas, cpu %s, memory %s, regions %s, min healthy %s, isolation %s", name, d.Replicas, cpu, mem,
		d.Regions.String(), minH, iso)
	if d.Autostop != "" {
		fmt.Fprintf(w, ", autostop %s", d.Autostop)
	}
	if hc := d.HealthCheck; hc != nil {
		fmt.Fprintf(w, ", health check %s", hc.Path)
	}
	fmt.Fprintln(w)
}
