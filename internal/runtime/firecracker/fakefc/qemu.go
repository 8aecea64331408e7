package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
)

// qemuVM is the guest under QEMU: -M microvm, TCG, virtio-mmio devices.
type qemuVM struct {
	cmd  *exec.Cmd
	mon  *qmp.SocketMonitor
	done chan struct{}
	code int
}

// defaultBootArgs is what Firecracker uses when boot_args is absent.
const defaultBootArgs = "reboot=k panic=1 pci=off"

// qemuArgs translates the configuration into QEMU's command line: the
// Firecracker machine (serial console, i8042 for Ctrl+Alt+Del, virtio-mmio
// block and net) as QEMU's microvm machine type builds it.
func qemuArgs(cfg config, qmpPath, incoming string) []string {
	args := []string{
		"-M", "microvm,x-option-roms=off,rtc=on", "-accel", "tcg,tb-size=64", "-cpu", "max",
		"-m", strconv.Itoa(cfg.Machine.MemSizeMib), "-smp", strconv.Itoa(cfg.Machine.VcpuCount),
		"-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
		"-no-reboot", "-device", "i8042",
		"-qmp", "unix:" + qmpPath + ",server=on,wait=off",
		"-kernel", cfg.Boot.KernelImagePath,
	}
	if cfg.Boot.InitrdPath != "" {
		args = append(args, "-initrd", cfg.Boot.InitrdPath)
	}
	cmdline := cfg.Boot.BootArgs
	if cmdline == "" {
		cmdline = defaultBootArgs
	}
	// Firecracker attaches the root device first (/dev/vda) and names it
	// on the command line.
	drives := append([]int(nil), rootFirst(cfg)...)
	for _, i := range drives {
		d := cfg.Drives[i]
		if d.IsRootDevice {
			cmdline += " root=/dev/vda"
			if d.IsReadOnly {
				cmdline += " ro"
			} else {
				cmdline += " rw"
			}
		}
		ro, cache := "off", "unsafe"
		if d.IsReadOnly {
			ro = "on"
		}
		if d.CacheType == "Writeback" {
			cache = "writeback"
		}
		args = append(args,
			"-drive", "id="+d.DriveID+",file="+escapeComma(d.PathOnHost)+",format=raw,if=none,readonly="+ro+",cache="+cache,
			"-device", "virtio-blk-device,drive="+d.DriveID)
	}
	for _, n := range cfg.Nets {
		dev := "virtio-net-device,netdev=" + n.IfaceID
		if n.GuestMac != "" {
			dev += ",mac=" + n.GuestMac
		}
		if n.Mtu != 0 {
			dev += ",host_mtu=" + strconv.Itoa(n.Mtu)
		}
		args = append(args,
			"-netdev", "tap,id="+n.IfaceID+",ifname="+n.HostDevName+",script=no,downscript=no",
			"-device", dev)
	}
	args = append(args, "-append", cmdline)
	if incoming != "" {
		args = append(args, "-S", "-incoming", "exec:cat "+shellQuote(incoming))
	}
	return args
}

func rootFirst(cfg config) []int {
	var order []int
	for i, d := range cfg.Drives {
		if d.IsRootDevice {
			order = append([]int{i}, order...)
		} else {
			order = append(order, i)
		}
	}
	return order
}

func escapeComma(s string) string { return strings.ReplaceAll(s, ",", ",,") }

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// startQEMU runs QEMU with the guest's serial console on this process's
// stdout and connects to its QMP socket; with incoming, the VM is loaded
// from that migration stream and left paused.
func startQEMU(bin, qmpPath string, cfg config, incoming string) (*qemuVM, error) {
	os.Remove(qmpPath)
	cmd := exec.Command(bin, qemuArgs(cfg, qmpPath, incoming)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("qemu: %w", err)
	}
	q := &qemuVM{cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		q.code = cmd.ProcessState.ExitCode()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			q.code = 128 + int(ws.Signal())
		}
		close(q.done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mon, err := qmp.NewSocketMonitor("unix", qmpPath, 2*time.Second)
		if err == nil {
			if err = mon.Connect(); err == nil {
				q.mon = mon
				break
			}
		}
		select {
		case <-q.done:
			return nil, fmt.Errorf("qemu exited with status %d before its monitor answered", q.code)
		default:
		}
		if time.Now().After(deadline) {
			q.kill()
			return nil, fmt.Errorf("qemu monitor: %w", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if incoming != "" {
		if err := q.waitStatus("inmigrate"); err != nil {
			q.kill()
			return nil, err
		}
	}
	return q, nil
}

func (q *qemuVM) wait() int { <-q.done; return q.code }

func (q *qemuVM) kill() {
	q.cmd.Process.Kill()
	<-q.done
}

func (q *qemuVM) run(cmd string, args any) (json.RawMessage, error) {
	req := map[string]any{"execute": cmd}
	if args != nil {
		req["arguments"] = args
	}
	b, _ := json.Marshal(req)
	out, err := q.mon.Run(b)
	if err != nil {
		return nil, fmt.Errorf("qemu %s: %w", cmd, err)
	}
	var resp struct {
		Return json.RawMessage `json:"return"`
	}
	json.Unmarshal(out, &resp)
	return resp.Return, nil
}

func (q *qemuVM) status() (string, error) {
	out, err := q.run("query-status", nil)
	if err != nil {
		return "", err
	}
	var st struct {
		Status string `json:"status"`
	}
	err = json.Unmarshal(out, &st)
	return st.Status, err
}

// waitStatus waits until QEMU leaves status from.
func (q *qemuVM) waitStatus(from string) error {
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		st, err := q.status()
		if err != nil {
			return err
		}
		if st != from {
			return nil
		}
	}
	return fmt.Errorf("qemu still %s after 60s", from)
}

func (q *qemuVM) ctrlAltDel() error {
	keys := []map[string]string{{"type": "qcode", "data": "ctrl"}, {"type": "qcode", "data": "alt"}, {"type": "qcode", "data": "delete"}}
	_, err := q.run("send-key", map[string]any{"keys": keys})
	return err
}

func (q *qemuVM) pause() error  { _, err := q.run("stop", nil); return err }
func (q *qemuVM) resume() error { _, err := q.run("cont", nil); return err }

// save writes the paused VM's state (QEMU's migration stream) to path.
func (q *qemuVM) save(path string) error {
	if _, err := q.run("migrate", map[string]any{"uri": "exec:cat > " + shellQuote(path)}); err != nil {
		return err
	}
	for deadline := time.Now().Add(120 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		out, err := q.run("query-migrate", nil)
		if err != nil {
			return err
		}
		var m struct {
			Status    string `json:"status"`
			ErrorDesc string `json:"error-desc"`
		}
		json.Unmarshal(out, &m)
		switch m.Status {
		case "completed":
			return nil
		case "failed", "cancelled":
			return fault("Cannot create snapshot: " + m.ErrorDesc)
		}
	}
	return fault("Cannot create snapshot: timed out")
}
