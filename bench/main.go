// Command bench measures cairn against reference tools side by side, in one
// run, and prints the ratios the issues state targets for.
//
//	go run ./bench static [pack|edge|tls]...  pack vs tar|zstd; edge vs nginx (installs nginx, wrk, npm sites); edge with site rules vs without;
//	                        the edge over TLS (certificate from Pebble) vs nginx with TLS on the same certificate
//	go run ./bench memory   RSS of server and CLI while publishing a 2 GB tree
//	go run ./bench oci      push/pull throughput vs CNCF distribution v3.1.2
//	go run ./bench scaleout cold reads over S3 vs naive, warm S3 vs fs, propagation (PostgreSQL + S3)
//	go run ./bench gc       mark and sweep of 10,000 versions; edge p99 during the sweep vs idle
//	go run ./bench derive   OCI flatten (rootfs derivation) of a 200 MB image vs crane export | tar -x
//	go run ./bench rootfs   pack of a Debian rootfs vs tar|zstd; verified unpack vs tar --zstd -xpf (root)
//	go run ./bench coldstart [--base REV] [--head REV] [--runs N]  cold go build ./cmd/cairn (empty GOCACHE) of two revisions; where the time goes
//	go run ./bench incremental [local|shaped|memory]...  re-publishes of monaco-editor: unchanged (digest cache), one file changed, one inserted first;
//	                        through a 100 Mbit/s shaping proxy vs the raw tar upload; memory of a 2 GB tree re-published with one file changed
//	go run ./bench instances instance start to first HTTP answer vs plain runc run -d, warm and cold cache (root)
//	go run ./bench router   the edge's router vs straight to an instance (p50, req/s) and vs nginx as a reverse proxy (req/s)
//	go run ./bench router-serve   its processes only, until interrupted (to profile the edge under your own wrk)
//	go run ./bench instances --driver qemu-microvm [--boots N]  boot to first answer: qemu-microvm (KVM or TCG) vs runc (root)
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: go run ./bench static|memory|scaleout|oci|gc|rootfs|derive|coldstart|instances|incremental|router")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "static":
		err = static(os.Args[2:])
	case "memory":
		err = memory()
	case "gc":
		err = gcBench()
	case "scaleout":
		err = scaleout()
	case "oci":
		err = oci()
	case "rootfs":
		err = rootfsBench()
	case "derive":
		err = deriveBench()
	case "coldstart":
		err = coldstart(os.Args[2:])
	case "instances":
		if len(os.Args) > 2 {
			err = microVMBench(os.Args[2:])
		} else {
			err = instancesBench()
		}
	case "incremental":
		err = incremental(os.Args[2:])
	case "router":
		err = routerBench(false)
	case "router-serve": // the router benchmark's setup, kept up for profiling until interrupted
		err = routerBench(true)
	case "router-instance": // a process of the router benchmark
		err = routerInstance(os.Args[2])
	default:
		err = fmt.Errorf("unknown benchmark %q (static, memory, scaleout, oci, gc, rootfs, derive, coldstart, instances, incremental, router)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
