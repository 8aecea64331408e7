// Command fakefc is a fake Firecracker for tests on hosts without /dev/kvm
// or a firecracker binary: "firecracker-with-fake (QEMU TCG guest)". It
// takes Firecracker's flags (--api-sock, --id), serves Firecracker's API
// on the unix socket, and validates the method, path and body of every
// request against the pinned spec (package fcspec) before it acts; it
// answers as the spec says (204, 200 with the spec's bodies, 400 with
// {"fault_message": ...}) and checks its own answers against the spec too.
// On InstanceStart it boots the configured kernel, initramfs and drives
// under qemu-system-x86_64 -M microvm -accel tcg, so the guest really
// runs; the guest's serial console is its stdout, as with Firecracker.
// It exits, with QEMU's exit status, when the guest powers off.
//
// What it does not fake: KVM, the jailer, seccomp, rate limiters, MMDS,
// vsock, balloon; the snapshot files are QEMU's migration stream and a
// JSON description of the VM, not Firecracker's formats.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/cairnhq/cairn/internal/runtime/firecracker/fcspec"
)

func main() {
	sock := flag.String("api-sock", "", "path of the API socket")
	id := flag.String("id", "anonymous-instance", "the microVM's id")
	specPath := flag.String("spec", "", "the pinned firecracker.yaml (default: $"+fcspec.EnvSpec+" or found above the working directory)")
	qemu := flag.String("qemu", "qemu-system-x86_64", "the QEMU binary that runs the guest")
	logPath := flag.String("log-path", "", "file for the fake's own log (stderr when empty)")
	flag.String("level", "", "accepted for compatibility")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("fakefc: ")
	if *logPath != "" {
		f, err := os.OpenFile(*logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			log.Fatal(err)
		}
		log.SetOutput(f)
		os.Stderr = f // QEMU's own messages go there too
	}
	if *sock == "" {
		log.Fatal("--api-sock is required")
	}
	if *specPath == "" {
		p, err := fcspec.Find()
		if err != nil {
			log.Fatal(err)
		}
		*specPath = p
	}
	spec, err := fcspec.Load(*specPath)
	if err != nil {
		log.Fatal(err)
	}
	os.Remove(*sock)
	ln, err := net.Listen("unix", *sock)
	if err != nil {
		log.Fatal(err)
	}
	vmm := newVMM(*id, *qemu, *sock+".qmp")
	srv := &http.Server{Handler: &server{spec: spec, vmm: vmm}}
	go srv.Serve(ln)

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	code := 0
	select {
	case code = <-vmm.exited:
	case s := <-sigs:
		vmm.kill()
		code = 128 + int(s.(syscall.Signal))
	}
	srv.Shutdown(context.Background())
	os.Remove(*sock)
	if code != 0 {
		fmt.Fprintf(os.Stderr, "fakefc: guest ended with status %d\n", code)
	}
	os.Exit(code)
}
