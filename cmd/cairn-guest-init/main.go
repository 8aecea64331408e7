// Command cairn-guest-init is the init (PID 1) of cairn's microVM
// guests, packed into their initramfs; build it static (CGO_ENABLED=0).
// Its body is guest.Boot; see docs/design.md, "MicroVMs".
package main

import (
	"fmt"
	"os"

	"github.com/cairnhq/cairn/internal/guest"
)

func main() {
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "cairn-guest-init: runs only as PID 1 of a microVM guest")
		os.Exit(2)
	}
	guest.Boot()
}
