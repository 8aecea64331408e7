package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/cairnhq/cairn/internal/agent"
	"github.com/cairnhq/cairn/internal/hostapi"
	cruntime "github.com/cairnhq/cairn/internal/runtime"
	"github.com/cairnhq/cairn/internal/runtime/cache"
	fc "github.com/cairnhq/cairn/internal/runtime/firecracker"
	"github.com/cairnhq/cairn/internal/runtime/netns"
	"github.com/cairnhq/cairn/internal/runtime/vmguest"
)

// kvmDevice is what the firecracker driver needs open; a variable so
// that the refusal is tested on hosts that have one too.
var kvmDevice = "/dev/kvm"

// The firecracker driver of `cairn agent --driver firecracker --kernel
// PATH [--firecracker PATH] [--jailer PATH]`: the same cache, CNI
// networking and guest (package vmguest) as qemu-microvm, each instance a
// Firecracker microVM on KVM (docs/design.md, "MicroVMs").
func init() {
	agent.RegisterDriver("firecracker", func(o agent.DriverOptions) (hostapi.Runtime, error) {
		bin, jail, err := firecrackerBinaries(o.Firecracker, o.Jailer)
		if err != nil {
			return nil, err
		}
		if f, err := os.OpenFile(kvmDevice, os.O_RDWR, 0); err != nil {
			return nil, fmt.Errorf("firecracker driver: %s: %w (Firecracker needs KVM; --driver qemu-microvm runs without it)", kvmDevice, errors.Unwrap(err))
		} else {
			f.Close()
		}
		if o.Kernel == "" {
			return nil, errors.New("--kernel: firecracker needs a guest kernel (scripts/guest-kernel fetches one)")
		}
		dir, err := filepath.Abs(o.DataDir)
		if err != nil {
			return nil, err
		}
		o.DataDir = dir
		init, err := guestInit(o.GuestInit)
		if err != nil {
			return nil, err
		}
		g, err := vmguest.New(vmguest.Config{Kernel: o.Kernel, Init: init, State: filepath.Join(dir, "firecracker", "guest"), Reboot: true})
		if err != nil {
			return nil, err
		}
		d, err := fc.NewCairn(bin, filepath.Join(dir, "firecracker"), g)
		if err != nil {
			return nil, err
		}
		if jail != "" {
			d.Jail = &fc.Jail{Binary: jail, Base: filepath.Join(dir, "firecracker", "jail")}
		}
		o.Log.Info("firecracker driver", "binary", bin, "jailer", jail != "" || d.Jail != nil, "kernel", o.Kernel, "kernel_sha256", d.KernelSHA256())
		c, err := cache.Open(filepath.Join(dir, "cache"), &cache.HTTP{Base: o.APIURL, Token: o.Token}, cache.Options{})
		if err != nil {
			return nil, err
		}
		nets, err := netns.New(netns.Config{Dir: filepath.Join(dir, "net"), Bridge: o.Bridge, Subnet: o.Subnet})
		if err != nil {
			return nil, err
		}
		rt, err := cruntime.New(context.Background(), cruntime.Config{Dir: dir, Cache: c, Net: nets, Driver: d, Log: o.Log})
		if err != nil {
			return nil, err
		}
		return rt.ForHost(), nil
	})
}

// firecrackerBinaries finds --firecracker (default: on $PATH) and
// --jailer (default: none; the driver then uses one on $PATH if the
// binary is named firecracker). A binary named but missing is an error.
func firecrackerBinaries(bin, jailer string) (string, string, error) {
	if bin == "" {
		p, err := exec.LookPath("firecracker")
		if err != nil {
			return "", "", errors.New("firecracker driver: no firecracker binary on $PATH (give --firecracker PATH)")
		}
		bin = p
	} else if p, err := exec.LookPath(bin); err != nil {
		return "", "", fmt.Errorf("--firecracker %s: not an executable file", bin)
	} else {
		bin = p
	}
	if jailer != "" {
		p, err := exec.LookPath(jailer)
		if err != nil {
			return "", "", fmt.Errorf("--jailer %s: not an executable file", jailer)
		}
		jailer = p
	}
	return bin, jailer, nil
}
