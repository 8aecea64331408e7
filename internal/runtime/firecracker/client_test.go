package firecracker_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	fc "github.com/cairnhq/cairn/internal/runtime/firecracker"
	"github.com/cairnhq/cairn/internal/runtime/firecracker/fcspec"
)

func wantFault(t *testing.T, what string, err error, msg string) {
	t.Helper()
	var f *fc.Fault
	if !errors.As(err, &f) {
		t.Fatalf("%s: %v, want a fault", what, err)
	}
	if f.Status != 400 || !strings.Contains(f.Message, msg) {
		t.Fatalf("%s: %d %q, want 400 with %q", what, f.Status, f.Message, msg)
	}
}

func files(t *testing.T, names ...string) []string {
	dir := t.TempDir()
	var paths []string
	for _, n := range names {
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, []byte(n), 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

// TestProtocolWithFake covers every endpoint the driver uses, up to the
// boot, and the fake's state rules and faults.
func TestProtocolWithFake(t *testing.T) {
	t.Log("firecracker-with-fake (QEMU TCG guest): client against the fake's API; no guest boots here")
	ctx := context.Background()
	ns := testNetns(t, "tap0", "tap1")
	c := fc.NewClient(startFake(t, ns, "/bin/false").sock)
	f := files(t, "vmlinux", "initrd", "root.erofs", "data.img")
	kernel, initrd, root, data := f[0], f[1], f[2], f[3]

	info, err := c.Info(ctx)
	if err != nil || info.State != fc.StateNotStarted || info.ID != "test_vm" || info.AppName == "" {
		t.Fatalf("Info = %+v, %v", info, err)
	}
	// Post-boot actions before the boot.
	wantFault(t, "PATCH /vm before boot", c.PatchVM(ctx, fc.VMPaused), "before starting")
	wantFault(t, "SendCtrlAltDel before boot", c.Action(ctx, fc.ActionSendCtrlAltDel), "before starting")
	wantFault(t, "snapshot/create before boot", c.CreateSnapshot(ctx, fc.SnapshotCreateParams{MemFilePath: data, SnapshotPath: data}), "before starting")
	wantFault(t, "InstanceStart without a boot source", c.Action(ctx, fc.ActionInstanceStart), "boot-source")
	wantFault(t, "FlushMetrics without metrics", c.Action(ctx, fc.ActionFlushMetrics), "metrics")

	if err := c.PutMachineConfig(ctx, fc.MachineConfiguration{VcpuCount: 2, MemSizeMib: 256}); err != nil {
		t.Fatal(err)
	}
	wantFault(t, "odd vCPUs with SMT", c.PutMachineConfig(ctx, fc.MachineConfiguration{VcpuCount: 3, MemSizeMib: 256, Smt: true}), "vCPU")
	if err := c.PutMachineConfig(ctx, fc.MachineConfiguration{VcpuCount: 33, MemSizeMib: 256}); err == nil {
		t.Fatal("33 vCPUs accepted; the spec's maximum is 32")
	}
	wantFault(t, "missing kernel", c.PutBootSource(ctx, fc.BootSource{KernelImagePath: kernel + ".none"}), "kernel")
	wantFault(t, "missing initrd", c.PutBootSource(ctx, fc.BootSource{KernelImagePath: kernel, InitrdPath: initrd + ".none"}), "initrd")
	if err := c.PutBootSource(ctx, fc.BootSource{KernelImagePath: kernel, InitrdPath: initrd, BootArgs: "console=ttyS0"}); err != nil {
		t.Fatal(err)
	}
	if err := c.PutDrive(ctx, fc.Drive{DriveID: "rootfs", PathOnHost: root, IsRootDevice: true, IsReadOnly: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.PutDrive(ctx, fc.Drive{DriveID: "rootfs", PathOnHost: root, IsRootDevice: true, IsReadOnly: true}); err != nil {
		t.Fatalf("updating a drive: %v", err)
	}
	wantFault(t, "second root device", c.PutDrive(ctx, fc.Drive{DriveID: "other", PathOnHost: data, IsRootDevice: true}), "root block device already exists")
	wantFault(t, "missing drive file", c.PutDrive(ctx, fc.Drive{DriveID: "data", PathOnHost: data + ".none"}), "block device")
	if err := c.PutDrive(ctx, fc.Drive{DriveID: "data_1", PathOnHost: data}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"bad-id", "a.b", "ü", "a/b"} {
		if err := c.PutDrive(ctx, fc.Drive{DriveID: id, PathOnHost: data}); !errors.Is(err, fc.ErrBadID) {
			t.Errorf("PutDrive(%q): %v, want ErrBadID", id, err)
		}
		if err := c.PutNetworkInterface(ctx, fc.NetworkInterface{IfaceID: id, HostDevName: "tap0"}); !errors.Is(err, fc.ErrBadID) {
			t.Errorf("PutNetworkInterface(%q): %v, want ErrBadID", id, err)
		}
	}
	if err := c.PutNetworkInterface(ctx, fc.NetworkInterface{IfaceID: "eth0", HostDevName: "tap0", GuestMac: "06:00:0a:59:00:02"}); err != nil {
		t.Fatal(err)
	}
	wantFault(t, "tap in use", c.PutNetworkInterface(ctx, fc.NetworkInterface{IfaceID: "eth1", HostDevName: "tap0"}), "in use")
	wantFault(t, "MAC in use", c.PutNetworkInterface(ctx, fc.NetworkInterface{IfaceID: "eth1", HostDevName: "tap1", GuestMac: "06:00:0a:59:00:02"}), "in use")
	wantFault(t, "bad MAC", c.PutNetworkInterface(ctx, fc.NetworkInterface{IfaceID: "eth1", HostDevName: "tap1", GuestMac: "06:00"}), "MAC")
	wantFault(t, "no such tap", c.PutNetworkInterface(ctx, fc.NetworkInterface{IfaceID: "eth1", HostDevName: "tapnone"}), "tapnone")
	wantFault(t, "snapshot/load after configuring", c.LoadSnapshot(ctx, fc.SnapshotLoadParams{SnapshotPath: data, MemBackend: &fc.MemoryBackend{BackendType: "File", BackendPath: data}}), "not allowed after configuring")

	// The fake runs /bin/false as QEMU here: the start fails as a VMM
	// error (500 with a fault_message), and the VM is still not started.
	err = c.Action(ctx, fc.ActionInstanceStart)
	var fault *fc.Fault
	if !errors.As(err, &fault) || fault.Status != 500 || fault.Message == "" {
		t.Fatalf("InstanceStart with a failing QEMU: %v, want a 500 fault", err)
	}
	if info, err := c.Info(ctx); err != nil || info.State != fc.StateNotStarted {
		t.Fatalf("after a failed start: %+v, %v", info, err)
	}
}

// TestInvalidRequestsRefusedByFake sends what the spec refuses, as raw
// HTTP, and checks the 400 and its fault_message body against the spec.
func TestInvalidRequestsRefusedByFake(t *testing.T) {
	t.Log("firecracker-with-fake (QEMU TCG guest): the fake's request validation against the pinned spec")
	ns := testNetns(t)
	sock := startFake(t, ns, "/bin/false").sock
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	p, _ := fcspec.Find()
	spec, err := fcspec.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ method, path, body, msg string }{
		{"PUT", "/boot-source", `{"boot_args":"x"}`, "kernel_image_path"},
		{"PUT", "/boot-source", `{"kernel_image_path":"/k","extra":true}`, "extra"},
		{"PUT", "/boot-source", `{"kernel_image_path":5}`, "kernel_image_path"},
		{"PUT", "/boot-source", `not json`, "json"},
		{"PUT", "/machine-config", `{"vcpu_count":0,"mem_size_mib":128}`, "vcpu_count"},
		{"PUT", "/machine-config", `{"vcpu_count":1,"mem_size_mib":128,"huge_pages":"1G"}`, "huge_pages"},
		{"PUT", "/drives/rootfs", `{"drive_id":"rootfs"}`, "is_root_device"},
		{"PUT", "/drives/rootfs", `{"drive_id":"other","is_root_device":false,"path_on_host":"/etc/hostname","is_read_only":true}`, "does not match"},
		{"PUT", "/drives/bad-id", `{"drive_id":"bad-id","is_root_device":false,"path_on_host":"/etc/hostname","is_read_only":true}`, "Invalid ID"},
		{"PUT", "/drives/rootfs", `{"drive_id":"rootfs","is_root_device":true,"path_on_host":"/etc/hostname"}`, "is_read_only"},
		{"PUT", "/network-interfaces/eth0", `{"iface_id":"eth0"}`, "host_dev_name"},
		{"PUT", "/network-interfaces/eth0", `{"iface_id":"eth0","host_dev_name":"t","mtu":70000}`, "mtu"},
		{"PUT", "/actions", `{"action_type":"Reboot"}`, "action_type"},
		{"PUT", "/actions", `{}`, "action_type"},
		{"PATCH", "/vm", `{"state":"Stopped"}`, "state"},
		{"PUT", "/snapshot/create", `{"snapshot_path":"/s"}`, "mem_file_path"},
		{"PUT", "/snapshot/load", `{"mem_backend":{"backend_type":"File","backend_path":"/m"}}`, "snapshot_path"},
		{"POST", "/actions", `{"action_type":"InstanceStart"}`, "Invalid request method and/or path"},
		{"GET", "/nowhere", ``, "Invalid request method and/or path"},
		{"DELETE", "/", ``, "Invalid request method and/or path"},
	} {
		req, _ := http.NewRequest(c.method, "http://localhost"+c.path, strings.NewReader(c.body))
		if c.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e fc.Error
		if resp.StatusCode != 400 || json.Unmarshal(b, &e) != nil || !strings.Contains(e.FaultMessage, c.msg) {
			t.Errorf("%s %s %s: %d %s, want 400 with a fault_message naming %q", c.method, c.path, c.body, resp.StatusCode, b, c.msg)
			continue
		}
		// A 400 for a routed operation is one the spec lists.
		req2, _ := http.NewRequest(c.method, "http://localhost"+c.path, strings.NewReader(c.body))
		if op, err := spec.Request(context.Background(), req2); err == nil {
			if err := spec.Response(context.Background(), op, resp.StatusCode, b); err != nil {
				t.Errorf("%s %s: the fault is outside the spec: %v", c.method, c.path, err)
			}
		}
	}
}
