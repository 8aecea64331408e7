package main

import (
	"encoding/json"
	"errors"
	"net"
	"os"
	"regexp"
	"sync"
	"syscall"

	fc "github.com/cairnhq/cairn/internal/runtime/firecracker"
)

// config is the VM as configured through the API; the snapshot's
// description file holds it as JSON.
type config struct {
	Machine fc.MachineConfiguration `json:"machine"`
	Boot    *fc.BootSource          `json:"boot,omitempty"`
	Drives  []fc.Drive              `json:"drives,omitempty"` // in the order they were first put
	Nets    []fc.NetworkInterface   `json:"nets,omitempty"`
}

// vmm is the fake's state machine: Not started (configuring), Running,
// Paused. The rules are Firecracker's: configuration is pre-boot only,
// actions on the VM are post-boot only, a snapshot is taken of a paused
// VM and loaded into a fresh process.
type vmm struct {
	id, qemu, qmpPath string

	mu         sync.Mutex
	cfg        config
	configured bool // something other than logger/metrics was put: no snapshot load
	state      string
	q          *qemuVM
	exited     chan int
}

func newVMM(id, qemu, qmpPath string) *vmm {
	return &vmm{
		id: id, qemu: qemu, qmpPath: qmpPath,
		cfg:    config{Machine: fc.MachineConfiguration{VcpuCount: 1, MemSizeMib: 128}},
		state:  fc.StateNotStarted,
		exited: make(chan int, 1),
	}
}

var idRE = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

func checkID(id string) error {
	if !idRE.MatchString(id) {
		return faultf("Invalid ID: %q: an ID may contain only alphanumeric characters and underscores.", id)
	}
	return nil
}

func readable(what, p string) error {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0) // a FIFO must not block the API
	if err != nil {
		return faultf("%s: cannot open %s: %s", what, p, errText(err))
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return faultf("%s: %s is not a regular file", what, p)
	}
	return nil
}

// errText is the cause of a file error without the path (it is in the
// message already).
func errText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// handle runs one validated operation; it returns the 200 body, nil for
// 204, or an error (a fault is a 400).
func (v *vmm) handle(op string, params map[string]string, body []byte) (any, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch op {
	case "describeInstance":
		return fc.InstanceInfo{AppName: "Firecracker", ID: v.id, State: v.state, VmmVersion: "1.17.0-dev (fake: QEMU TCG guest)"}, nil
	case "getMachineConfiguration":
		return v.cfg.Machine, nil
	case "putMachineConfiguration":
		return nil, v.preBoot(func() error { return v.putMachine(body) })
	case "putGuestBootSource":
		return nil, v.preBoot(func() error { return v.putBoot(body) })
	case "putGuestDriveByID":
		return nil, v.preBoot(func() error { return v.putDrive(params["drive_id"], body) })
	case "putGuestNetworkInterfaceByID":
		return nil, v.preBoot(func() error { return v.putNet(params["iface_id"], body) })
	case "createSyncAction":
		var a fc.InstanceActionInfo
		if err := json.Unmarshal(body, &a); err != nil {
			return nil, faultf("%v", err)
		}
		return nil, v.action(a.ActionType)
	case "patchVm":
		var s fc.Vm
		if err := json.Unmarshal(body, &s); err != nil {
			return nil, faultf("%v", err)
		}
		return nil, v.patchVM(s.State)
	case "createSnapshot":
		var p fc.SnapshotCreateParams
		if err := json.Unmarshal(body, &p); err != nil {
			return nil, faultf("%v", err)
		}
		return nil, v.createSnapshot(p)
	case "loadSnapshot":
		var p fc.SnapshotLoadParams
		if err := json.Unmarshal(body, &p); err != nil {
			return nil, faultf("%v", err)
		}
		return nil, v.loadSnapshot(p)
	}
	return nil, faultf("The fake Firecracker does not implement %s.", op)
}

func (v *vmm) preBoot(f func() error) error {
	if v.state != fc.StateNotStarted {
		return fault("The requested operation is not supported after starting the microVM.")
	}
	if err := f(); err != nil {
		return err
	}
	v.configured = true
	return nil
}

func (v *vmm) putMachine(body []byte) error {
	var m fc.MachineConfiguration
	if err := json.Unmarshal(body, &m); err != nil {
		return faultf("%v", err)
	}
	if m.Smt && m.VcpuCount > 1 && m.VcpuCount%2 == 1 {
		return fault("Invalid machine configuration: the vCPU number is invalid! The vCPU number can only be 1 or an even number when SMT is enabled.")
	}
	if m.MemSizeMib <= 0 {
		return fault("Invalid machine configuration: the memory size (MiB) is invalid.")
	}
	if m.HugePages == "2M" && m.MemSizeMib%2 != 0 {
		return fault("Invalid machine configuration: the memory size must be a multiple of 2 MiB with 2M huge pages.")
	}
	v.cfg.Machine = m
	return nil
}

func (v *vmm) putBoot(body []byte) error {
	var b fc.BootSource
	if err := json.Unmarshal(body, &b); err != nil {
		return faultf("%v", err)
	}
	if err := readable("The kernel file cannot be opened", b.KernelImagePath); err != nil {
		return err
	}
	if b.InitrdPath != "" {
		if err := readable("The initrd file cannot be opened", b.InitrdPath); err != nil {
			return err
		}
	}
	v.cfg.Boot = &b
	return nil
}

func (v *vmm) putDrive(id string, body []byte) error {
	if err := checkID(id); err != nil {
		return err
	}
	var raw map[string]json.RawMessage
	json.Unmarshal(body, &raw)
	var d fc.Drive
	if err := json.Unmarshal(body, &d); err != nil {
		return faultf("%v", err)
	}
	if d.DriveID != id {
		return fault("The id from the path does not match the id from the body!")
	}
	if _, ok := raw["socket"]; ok {
		return fault("The fake Firecracker supports virtio-block drives only, not vhost-user.")
	}
	if _, ok := raw["is_read_only"]; !ok || d.PathOnHost == "" {
		return fault("Unable to create the block device: path_on_host and is_read_only are required for a virtio-block drive.")
	}
	if err := readable("Unable to create the block device", d.PathOnHost); err != nil {
		return err
	}
	i := -1
	for j, e := range v.cfg.Drives {
		if e.DriveID == id {
			i = j
		} else if d.IsRootDevice && e.IsRootDevice {
			return fault("A root block device already exists!")
		}
	}
	if i < 0 {
		v.cfg.Drives = append(v.cfg.Drives, d)
	} else {
		v.cfg.Drives[i] = d
	}
	return nil
}

func (v *vmm) putNet(id string, body []byte) error {
	if err := checkID(id); err != nil {
		return err
	}
	var n fc.NetworkInterface
	if err := json.Unmarshal(body, &n); err != nil {
		return faultf("%v", err)
	}
	if n.IfaceID != id {
		return fault("The id from the path does not match the id from the body!")
	}
	if n.GuestMac != "" {
		if hw, err := net.ParseMAC(n.GuestMac); err != nil || len(hw) != 6 {
			return faultf("Invalid guest MAC address: %q", n.GuestMac)
		}
	}
	// Firecracker opens the tap here, in its own network namespace.
	if _, err := net.InterfaceByName(n.HostDevName); err != nil {
		return faultf("Could not create the network device: Open tap device failed: %s: no such device", n.HostDevName)
	}
	i := -1
	for j, e := range v.cfg.Nets {
		if e.IfaceID == id {
			i = j
		} else if e.HostDevName == n.HostDevName {
			return faultf("The host device name %s is already in use.", n.HostDevName)
		} else if n.GuestMac != "" && e.GuestMac == n.GuestMac {
			return faultf("The guest MAC address %s is already in use.", n.GuestMac)
		}
	}
	if i < 0 {
		v.cfg.Nets = append(v.cfg.Nets, n)
	} else {
		v.cfg.Nets[i] = n
	}
	return nil
}

func (v *vmm) action(a string) error {
	switch a {
	case fc.ActionInstanceStart:
		if v.state != fc.StateNotStarted {
			return fault("The requested operation is not supported after starting the microVM.")
		}
		if v.cfg.Boot == nil {
			return fault("Cannot start microvm that was not configured: missing kernel configuration (PUT /boot-source).")
		}
		q, err := startQEMU(v.qemu, v.qmpPath, v.cfg, "")
		if err != nil {
			return err
		}
		v.run(q)
		v.state = fc.StateRunning
		return nil
	case fc.ActionSendCtrlAltDel:
		if v.state == fc.StateNotStarted {
			return fault("The requested operation is not supported before starting the microVM.")
		}
		return v.q.ctrlAltDel()
	case fc.ActionFlushMetrics:
		return fault("The metrics system is not initialized: configure it with PUT /metrics first.")
	}
	return faultf("Unknown action %q.", a)
}

// run watches q and ends the process's wait when the guest is gone.
func (v *vmm) run(q *qemuVM) {
	v.q = q
	go func() { v.exited <- q.wait() }()
}

func (v *vmm) kill() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.q != nil {
		v.q.kill()
	}
}

func (v *vmm) patchVM(state string) error {
	if v.state == fc.StateNotStarted {
		return fault("The requested operation is not supported before starting the microVM.")
	}
	if state == fc.VMPaused {
		if err := v.q.pause(); err != nil {
			return err
		}
		v.state = fc.StatePaused
		return nil
	}
	if err := v.q.resume(); err != nil {
		return err
	}
	v.state = fc.StateRunning
	return nil
}

func (v *vmm) createSnapshot(p fc.SnapshotCreateParams) error {
	if v.state == fc.StateNotStarted {
		return fault("The requested operation is not supported before starting the microVM.")
	}
	if v.state != fc.StatePaused {
		return fault("Cannot create snapshot: the microVM is not paused.")
	}
	if p.SnapshotType == "Diff" && !v.cfg.Machine.TrackDirtyPages {
		return fault("Diff snapshots are not enabled: track_dirty_pages is off.")
	}
	desc, _ := json.MarshalIndent(v.cfg, "", "  ")
	if err := os.WriteFile(p.MemFilePath, desc, 0o600); err != nil {
		return faultf("Cannot create snapshot: %s", errText(err))
	}
	return v.q.save(p.SnapshotPath)
}

func (v *vmm) loadSnapshot(p fc.SnapshotLoadParams) error {
	if v.configured || v.state != fc.StateNotStarted {
		return fault("Loading a microVM snapshot not allowed after configuring boot-specific resources.")
	}
	if p.MemBackend == nil {
		return fault("Either mem_backend or mem_file_path must be present.")
	}
	if p.MemBackend.BackendType != "File" {
		return fault("The fake Firecracker loads File memory backends only.")
	}
	b, err := os.ReadFile(p.MemBackend.BackendPath)
	if err != nil {
		return faultf("Cannot load snapshot: %s", errText(err))
	}
	var cfg config
	if err := json.Unmarshal(b, &cfg); err != nil || cfg.Boot == nil {
		return fault("Cannot load snapshot: the memory file is not a snapshot of this fake.")
	}
	if err := readable("Cannot load snapshot", p.SnapshotPath); err != nil {
		return err
	}
	for _, o := range p.NetworkOverrides {
		found := false
		for i := range cfg.Nets {
			if cfg.Nets[i].IfaceID == o.IfaceID {
				cfg.Nets[i].HostDevName, found = o.HostDevName, true
			}
		}
		if !found {
			return faultf("Cannot load snapshot: no network interface %q in the snapshot.", o.IfaceID)
		}
	}
	q, err := startQEMU(v.qemu, v.qmpPath, cfg, p.SnapshotPath)
	if err != nil {
		return err
	}
	v.cfg, v.configured = cfg, true
	v.run(q)
	v.state = fc.StatePaused
	if p.ResumeVM {
		if err := q.resume(); err != nil {
			return err
		}
		v.state = fc.StateRunning
	}
	return nil
}
