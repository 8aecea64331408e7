package firecracker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// Client speaks Firecracker's API over its unix socket. Every method is
// one request; a fault answer becomes a *Fault.
type Client struct {
	hc *http.Client
}

// NewClient returns a client of the API socket at sock.
func NewClient(sock string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		DisableKeepAlives: true,
	}
	return &Client{hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// Fault is an error answer of the API: its status and fault_message.
type Fault struct {
	Method, Path string
	Status       int
	Message      string
}

func (f *Fault) Error() string {
	return fmt.Sprintf("firecracker %s %s: %d: %s", f.Method, f.Path, f.Status, f.Message)
}

// ErrBadID: a resource id outside [A-Za-z0-9_], refused before sending.
var ErrBadID = errors.New("firecracker: resource ids are [A-Za-z0-9_]+")

var idRE = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// ValidID reports whether id is a valid resource id (drive, interface).
func ValidID(id string) bool { return idRE.MatchString(id) }

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://localhost"+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("firecracker %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("firecracker %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		f := &Fault{Method: method, Path: path, Status: resp.StatusCode}
		var e Error
		if json.Unmarshal(b, &e) == nil && e.FaultMessage != "" {
			f.Message = e.FaultMessage
		} else {
			f.Message = strings.TrimSpace(string(b))
		}
		return f
	}
	if out == nil {
		if resp.StatusCode != http.StatusNoContent {
			return fmt.Errorf("firecracker %s %s: status %d, want 204", method, path, resp.StatusCode)
		}
		return nil
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("firecracker %s %s: status %d, want 200", method, path, resp.StatusCode)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("firecracker %s %s: %w", method, path, err)
	}
	return nil
}

// Info is GET /.
func (c *Client) Info(ctx context.Context) (InstanceInfo, error) {
	var info InstanceInfo
	err := c.do(ctx, http.MethodGet, "/", nil, &info)
	return info, err
}

// PutMachineConfig is PUT /machine-config.
func (c *Client) PutMachineConfig(ctx context.Context, m MachineConfiguration) error {
	return c.do(ctx, http.MethodPut, "/machine-config", m, nil)
}

// PutBootSource is PUT /boot-source.
func (c *Client) PutBootSource(ctx context.Context, b BootSource) error {
	return c.do(ctx, http.MethodPut, "/boot-source", b, nil)
}

// PutDrive is PUT /drives/{drive_id}.
func (c *Client) PutDrive(ctx context.Context, d Drive) error {
	if !ValidID(d.DriveID) {
		return ErrBadID
	}
	return c.do(ctx, http.MethodPut, "/drives/"+d.DriveID, d, nil)
}

// PutNetworkInterface is PUT /network-interfaces/{iface_id}.
func (c *Client) PutNetworkInterface(ctx context.Context, n NetworkInterface) error {
	if !ValidID(n.IfaceID) {
		return ErrBadID
	}
	return c.do(ctx, http.MethodPut, "/network-interfaces/"+n.IfaceID, n, nil)
}

// Action is PUT /actions (InstanceStart, SendCtrlAltDel, FlushMetrics).
func (c *Client) Action(ctx context.Context, action string) error {
	return c.do(ctx, http.MethodPut, "/actions", InstanceActionInfo{ActionType: action}, nil)
}

// PatchVM is PATCH /vm (Paused or Resumed).
func (c *Client) PatchVM(ctx context.Context, state string) error {
	return c.do(ctx, http.MethodPatch, "/vm", Vm{State: state}, nil)
}

// CreateSnapshot is PUT /snapshot/create; the VM must be paused.
func (c *Client) CreateSnapshot(ctx context.Context, p SnapshotCreateParams) error {
	return c.do(ctx, http.MethodPut, "/snapshot/create", p, nil)
}

// LoadSnapshot is PUT /snapshot/load, on a fresh process only.
func (c *Client) LoadSnapshot(ctx context.Context, p SnapshotLoadParams) error {
	return c.do(ctx, http.MethodPut, "/snapshot/load", p, nil)
}
