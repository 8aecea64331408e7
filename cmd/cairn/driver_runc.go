package main

import (
	"context"
	"path/filepath"

	"github.com/cairnhq/cairn/internal/agent"
	"github.com/cairnhq/cairn/internal/hostapi"
	cruntime "github.com/cairnhq/cairn/internal/runtime"
	"github.com/cairnhq/cairn/internal/runtime/cache"
	"github.com/cairnhq/cairn/internal/runtime/netns"
	"github.com/cairnhq/cairn/internal/runtime/runc"
)

// The runc driver of `cairn agent --driver runc`: the release cache, CNI
// networking and runc, all kept under the agent's data dir (docs/design.md,
// "Hosts and instances").
func init() {
	agent.RegisterDriver("runc", func(o agent.DriverOptions) (hostapi.Runtime, error) {
		dir, err := filepath.Abs(o.DataDir)
		if err != nil {
			return nil, err
		}
		o.DataDir = dir
		c, err := cache.Open(filepath.Join(o.DataDir, "cache"), &cache.HTTP{Base: o.APIURL, Token: o.Token}, cache.Options{})
		if err != nil {
			return nil, err
		}
		// Four spare namespaces with their addresses, made ahead of the
		// starts (docs/design.md, "Networking").
		nets, err := netns.New(netns.Config{Dir: filepath.Join(o.DataDir, "net"), Bridge: o.Bridge, Subnet: o.Subnet, Pool: 4})
		if err != nil {
			return nil, err
		}
		nets.Prefill(false)
		d, err := runc.New(filepath.Join(o.DataDir, "runc"))
		if err != nil {
			return nil, err
		}
		return cruntime.New(context.Background(), cruntime.Config{Dir: o.DataDir, Cache: c, Net: nets, Driver: d, Log: o.Log})
	})
}
