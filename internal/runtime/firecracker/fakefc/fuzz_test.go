package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cairnhq/cairn/internal/runtime/firecracker/fcspec"
)

var (
	specOnce sync.Once
	spec     *fcspec.Spec
	specErr  error
)

func loadSpec(t testing.TB) *fcspec.Spec {
	specOnce.Do(func() {
		var p string
		if p, specErr = fcspec.Find(); specErr == nil {
			spec, specErr = fcspec.Load(p)
		}
	})
	if specErr != nil {
		t.Skip(specErr)
	}
	return spec
}

// FuzzRequest sends one request to a fresh fake: whatever the method,
// path and body, it answers 200, 204 or 400, never panics, and every
// answer is one the spec allows (the server turns an answer outside the
// spec into a 500, which fails here). QEMU is /bin/false: nothing boots.
func FuzzRequest(f *testing.F) {
	for _, c := range [][3]string{
		{"GET", "/", ""},
		{"PUT", "/machine-config", `{"vcpu_count":2,"mem_size_mib":256,"smt":true}`},
		{"PUT", "/boot-source", `{"kernel_image_path":"/etc/hostname","boot_args":"console=ttyS0"}`},
		{"PUT", "/drives/rootfs", `{"drive_id":"rootfs","path_on_host":"/etc/hostname","is_root_device":true,"is_read_only":true}`},
		{"PUT", "/drives/bad-id", `{"drive_id":"bad-id","is_root_device":false}`},
		{"PUT", "/network-interfaces/eth0", `{"iface_id":"eth0","host_dev_name":"lo","guest_mac":"06:00:00:00:00:01"}`},
		{"PUT", "/actions", `{"action_type":"InstanceStart"}`},
		{"PUT", "/actions", `{"action_type":"SendCtrlAltDel"}`},
		{"PATCH", "/vm", `{"state":"Paused"}`},
		{"PUT", "/snapshot/create", `{"snapshot_path":"/s","mem_file_path":"/m"}`},
		{"PUT", "/snapshot/load", `{"snapshot_path":"/s","mem_backend":{"backend_type":"File","backend_path":"/m"}}`},
		{"PUT", "/boot-source", `{"kernel_image_path":1}`},
		{"DELETE", "/drives/x", ``},
	} {
		f.Add(c[0], c[1], c[2])
	}
	s := loadSpec(f)
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, method, path, body string) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, "?#") {
			return
		}
		req, err := http.NewRequest(method, "http://localhost"+path, strings.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", "application/json")
		srv := &server{spec: s, vmm: newVMM("fuzz", "/bin/false", filepath.Join(dir, "qmp"))}
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		switch w.Code {
		case 200, 204:
		case 400:
			var e struct {
				FaultMessage string `json:"fault_message"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.FaultMessage == "" {
				t.Fatalf("%s %s %q: 400 without a fault_message: %s", method, path, body, w.Body)
			}
		default:
			t.Fatalf("%s %s %q: %d %s", method, path, body, w.Code, w.Body)
		}
	})
}
