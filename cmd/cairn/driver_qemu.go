package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/cairnhq/cairn/internal/agent"
	"github.com/cairnhq/cairn/internal/hostapi"
	cruntime "github.com/cairnhq/cairn/internal/runtime"
	"github.com/cairnhq/cairn/internal/runtime/cache"
	"github.com/cairnhq/cairn/internal/runtime/netns"
	"github.com/cairnhq/cairn/internal/runtime/qemu"
)

// The qemu-microvm driver of `cairn agent --driver qemu-microvm --kernel
// PATH`: the same cache and CNI networking as runc, each instance a QEMU
// microVM (docs/design.md, "MicroVMs").
func init() {
	agent.RegisterDriver("qemu-microvm", func(o agent.DriverOptions) (hostapi.Runtime, error) {
		dir, err := filepath.Abs(o.DataDir)
		if err != nil {
			return nil, err
		}
		o.DataDir = dir
		if o.Kernel == "" {
			return nil, errors.New("--kernel: qemu-microvm needs a guest kernel (scripts/guest-kernel fetches one)")
		}
		init, err := guestInit(o.GuestInit)
		if err != nil {
			return nil, err
		}
		d, err := qemu.New(qemu.Config{Kernel: o.Kernel, Init: init, State: filepath.Join(o.DataDir, "qemu")})
		if err != nil {
			return nil, err
		}
		o.Log.Info("qemu-microvm driver", "accel", d.Accel(), "kernel", o.Kernel, "kernel_sha256", d.KernelSHA256())
		c, err := cache.Open(filepath.Join(o.DataDir, "cache"), &cache.HTTP{Base: o.APIURL, Token: o.Token}, cache.Options{})
		if err != nil {
			return nil, err
		}
		nets, err := netns.New(netns.Config{Dir: filepath.Join(o.DataDir, "net"), Bridge: o.Bridge, Subnet: o.Subnet})
		if err != nil {
			return nil, err
		}
		rt, err := cruntime.New(context.Background(), cruntime.Config{Dir: o.DataDir, Cache: c, Net: nets, Driver: d, Log: o.Log})
		if err != nil {
			return nil, err
		}
		return rt.ForHost(), nil
	})
}

// guestInit is the --guest-init binary: the flag, else cairn-guest-init
// beside this executable, else on $PATH.
func guestInit(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "cairn-guest-init")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("cairn-guest-init")
	if err != nil {
		return "", errors.New("--guest-init: no cairn-guest-init beside cairn or on $PATH (CGO_ENABLED=0 go build ./cmd/cairn-guest-init)")
	}
	return p, nil
}
