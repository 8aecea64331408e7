package firecracker

// The request and response bodies of Firecracker's API, as the pinned spec
// (../shared/firecracker/firecracker.yaml) defines them: one type per
// definition that cairn uses, with the spec's JSON field names. Optional
// fields are omitted when zero; fields whose zero value means something
// (is_read_only) are always sent.

// MachineConfiguration is the spec's MachineConfiguration.
type MachineConfiguration struct {
	VcpuCount       int    `json:"vcpu_count"`   // 1..32
	MemSizeMib      int    `json:"mem_size_mib"` // guest memory
	Smt             bool   `json:"smt,omitempty"`
	TrackDirtyPages bool   `json:"track_dirty_pages,omitempty"`
	HugePages       string `json:"huge_pages,omitempty"` // None, Transparent, 2M
}

// BootSource is the spec's BootSource.
type BootSource struct {
	KernelImagePath string `json:"kernel_image_path"`
	InitrdPath      string `json:"initrd_path,omitempty"`
	BootArgs        string `json:"boot_args,omitempty"`
}

// Drive is the spec's Drive (virtio-block; cairn uses no vhost-user).
type Drive struct {
	DriveID      string `json:"drive_id"`
	PathOnHost   string `json:"path_on_host"`
	IsRootDevice bool   `json:"is_root_device"`
	IsReadOnly   bool   `json:"is_read_only"`
	CacheType    string `json:"cache_type,omitempty"` // Unsafe, Writeback
	IoEngine     string `json:"io_engine,omitempty"`  // Sync, Async
}

// NetworkInterface is the spec's NetworkInterface.
type NetworkInterface struct {
	IfaceID     string `json:"iface_id"`
	HostDevName string `json:"host_dev_name"` // a tap device in Firecracker's network namespace
	GuestMac    string `json:"guest_mac,omitempty"`
	Mtu         int    `json:"mtu,omitempty"`
}

// Actions of InstanceActionInfo.
const (
	ActionInstanceStart  = "InstanceStart"
	ActionSendCtrlAltDel = "SendCtrlAltDel"
	ActionFlushMetrics   = "FlushMetrics"
)

// InstanceActionInfo is the spec's InstanceActionInfo.
type InstanceActionInfo struct {
	ActionType string `json:"action_type"`
}

// States of Vm (PATCH /vm).
const (
	VMPaused  = "Paused"
	VMResumed = "Resumed"
)

// Vm is the spec's Vm.
type Vm struct {
	State string `json:"state"`
}

// SnapshotCreateParams is the spec's SnapshotCreateParams.
type SnapshotCreateParams struct {
	MemFilePath  string `json:"mem_file_path"`
	SnapshotPath string `json:"snapshot_path"`
	SnapshotType string `json:"snapshot_type,omitempty"` // Full, Diff
}

// MemoryBackend is the spec's MemoryBackend.
type MemoryBackend struct {
	BackendType string `json:"backend_type"` // File, Uffd
	BackendPath string `json:"backend_path"`
}

// NetworkOverride is the spec's NetworkOverride.
type NetworkOverride struct {
	IfaceID     string `json:"iface_id"`
	HostDevName string `json:"host_dev_name"`
}

// SnapshotLoadParams is the spec's SnapshotLoadParams (mem_backend, not the
// deprecated mem_file_path).
type SnapshotLoadParams struct {
	SnapshotPath     string            `json:"snapshot_path"`
	MemBackend       *MemoryBackend    `json:"mem_backend,omitempty"`
	TrackDirtyPages  bool              `json:"track_dirty_pages,omitempty"`
	ResumeVM         bool              `json:"resume_vm,omitempty"`
	NetworkOverrides []NetworkOverride `json:"network_overrides,omitempty"`
}

// States of InstanceInfo.
const (
	StateNotStarted = "Not started"
	StateRunning    = "Running"
	StatePaused     = "Paused"
)

// InstanceInfo is the spec's InstanceInfo (GET /).
type InstanceInfo struct {
	AppName    string `json:"app_name"`
	ID         string `json:"id"`
	State      string `json:"state"`
	VmmVersion string `json:"vmm_version"`
}

// Error is the spec's Error: the body of every fault.
type Error struct {
	FaultMessage string `json:"fault_message"`
}
