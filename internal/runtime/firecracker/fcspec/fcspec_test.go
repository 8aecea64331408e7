package fcspec

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
)

// Load is shared by the tests of this package.
func load(t testing.TB) *Spec {
	t.Helper()
	p, err := Find()
	if err != nil {
		t.Skip(err)
	}
	s, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func req(method, path, body string) *http.Request {
	r, _ := http.NewRequest(method, "http://localhost"+path, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	return r
}

func TestRequests(t *testing.T) {
	s := load(t)
	ctx := context.Background()
	for _, c := range []struct {
		method, path, body string
		op                 string // "" when refused
	}{
		{"GET", "/", "", "describeInstance"},
		{"PUT", "/machine-config", `{"vcpu_count":2,"mem_size_mib":256}`, "putMachineConfiguration"},
		{"PUT", "/machine-config", `{"vcpu_count":0,"mem_size_mib":256}`, ""},  // minimum 1
		{"PUT", "/machine-config", `{"vcpu_count":33,"mem_size_mib":256}`, ""}, // maximum 32
		{"PUT", "/machine-config", `{"mem_size_mib":256}`, ""},                 // vcpu_count required
		{"PUT", "/machine-config", `{"vcpu_count":1,"mem_size_mib":"1"}`, ""},
		{"PUT", "/boot-source", `{"kernel_image_path":"/k","boot_args":"console=ttyS0"}`, "putGuestBootSource"},
		{"PUT", "/boot-source", `{"boot_args":"x"}`, ""},
		{"PUT", "/boot-source", `{"kernel_image_path":"/k","bogus":1}`, ""}, // unknown field
		{"PUT", "/boot-source", `{"kernel_image_path":`, ""},
		{"PUT", "/drives/rootfs", `{"drive_id":"rootfs","path_on_host":"/r","is_root_device":true,"is_read_only":true}`, "putGuestDriveByID"},
		{"PUT", "/drives/rootfs", `{"drive_id":"rootfs","is_root_device":true,"cache_type":"Never"}`, ""},
		{"PUT", "/network-interfaces/eth0", `{"iface_id":"eth0","host_dev_name":"tap0","guest_mac":"06:00:00:00:00:01"}`, "putGuestNetworkInterfaceByID"},
		{"PUT", "/network-interfaces/eth0", `{"iface_id":"eth0","host_dev_name":"tap0","mtu":12}`, ""},
		{"PUT", "/actions", `{"action_type":"InstanceStart"}`, "createSyncAction"},
		{"PUT", "/actions", `{"action_type":"Reboot"}`, ""},
		{"PUT", "/actions", ``, ""},
		{"PATCH", "/vm", `{"state":"Paused"}`, "patchVm"},
		{"PATCH", "/vm", `{"state":"Stopped"}`, ""},
		{"PUT", "/snapshot/create", `{"snapshot_path":"/s","mem_file_path":"/m","snapshot_type":"Full"}`, "createSnapshot"},
		{"PUT", "/snapshot/create", `{"snapshot_path":"/s"}`, ""},
		{"PUT", "/snapshot/load", `{"snapshot_path":"/s","mem_backend":{"backend_type":"File","backend_path":"/m"},"resume_vm":true}`, "loadSnapshot"},
		{"PUT", "/snapshot/load", `{"snapshot_path":"/s","mem_backend":{"backend_type":"Disk","backend_path":"/m"}}`, ""},
		{"DELETE", "/vm", ``, ""},
		{"GET", "/nowhere", ``, ""},
	} {
		op, err := s.Request(ctx, req(c.method, c.path, c.body))
		switch {
		case c.op == "" && err == nil:
			t.Errorf("%s %s %s: accepted as %s, want refused", c.method, c.path, c.body, op.ID)
		case c.op != "" && err != nil:
			t.Errorf("%s %s %s: %v", c.method, c.path, c.body, err)
		case c.op != "" && op.ID != c.op:
			t.Errorf("%s %s: operation %s, want %s", c.method, c.path, op.ID, c.op)
		}
	}
	if _, err := s.Request(ctx, req("POST", "/actions", `{"action_type":"InstanceStart"}`)); !errors.Is(err, ErrNoRoute) {
		t.Errorf("POST /actions: %v, want ErrNoRoute", err)
	}
	if op, err := s.Request(ctx, req("PUT", "/drives/a", `{"drive_id":"a","is_root_device":false}`)); err != nil || op.Params["drive_id"] != "a" {
		t.Errorf("path parameter: %+v, %v", op, err)
	}
}

func TestResponses(t *testing.T) {
	s := load(t)
	ctx := context.Background()
	get, err := s.Request(ctx, req("GET", "/", ""))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Response(ctx, get, 200, []byte(`{"app_name":"Firecracker","id":"x","state":"Running","vmm_version":"1.17.0-dev"}`)); err != nil {
		t.Error(err)
	}
	if err := s.Response(ctx, get, 200, []byte(`{"app_name":"Firecracker","id":"x","state":"Booting","vmm_version":"1"}`)); err == nil {
		t.Error("a state outside the enum passed")
	}
	put, err := s.Request(ctx, req("PUT", "/actions", `{"action_type":"InstanceStart"}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Response(ctx, put, 204, nil); err != nil {
		t.Error(err)
	}
	if err := s.Response(ctx, put, 400, []byte(`{"fault_message":"no"}`)); err != nil {
		t.Error(err)
	}
	if err := s.Response(ctx, put, 200, []byte(`{}`)); err == nil {
		t.Error("200 for PUT /actions passed; the spec gives 204")
	}
}
