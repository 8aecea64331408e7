// Command testguest is a minimal guest init for the firecracker driver's
// own tests, not cairn's guest init: it says it is up on the console,
// turns Ctrl+Alt+Del into SIGINT, and then either exits at once with the
// status given as testguest.exit=N on the kernel command line or waits
// for Ctrl+Alt+Del (status 0). It reports the status as the guest init
// does ("cairn-guest: exit N") and reboots, which ends the VMM.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	os.Mkdir("/proc", 0o555)
	syscall.Mount("proc", "/proc", "proc", 0, "")
	syscall.Reboot(syscall.LINUX_REBOOT_CMD_CAD_OFF)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	cmdline, _ := os.ReadFile("/proc/cmdline")
	fmt.Println("testguest: up")
	code := "0"
	exit := ""
	for _, f := range strings.Fields(string(cmdline)) {
		if v, ok := strings.CutPrefix(f, "testguest.exit="); ok {
			exit = v
		}
	}
	if exit != "" {
		code = exit
	} else {
		s := <-sigs
		fmt.Println("testguest: got", s)
	}
	fmt.Println("cairn-guest: exit " + code)
	syscall.Sync()
	syscall.Reboot(syscall.LINUX_REBOOT_CMD_RESTART)
	select {}
}
