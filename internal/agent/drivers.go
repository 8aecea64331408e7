package agent

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/cairnhq/cairn/internal/agent/testproc"
	"github.com/cairnhq/cairn/internal/hostapi"
)

// DriverOptions is what a driver factory gets from `cairn agent`.
type DriverOptions struct {
	DataDir string // the agent's data dir; a driver keeps its state below it
	APIURL  string // where releases are fetched (GET /v1/releases/{sha}/artifact)
	Token   string // the agent token
	// Bridge and Subnet are the host bridge instances are addressed on
	// and its IPv4 range (the driver's defaults when empty).
	Bridge, Subnet string
	Log            *slog.Logger
	// For microVM drivers: the guest kernel (vmlinux) and the static
	// guest init binary (cmd/cairn-guest-init).
	Kernel    string
	GuestInit string
	// For the firecracker driver: its binary ("" for firecracker on
	// $PATH) and the jailer ("" for jailer on $PATH, if there).
	Firecracker, Jailer string
}

// Factory makes the Runtime of one driver.
type Factory func(DriverOptions) (hostapi.Runtime, error)

var (
	driversMu sync.Mutex
	drivers   = map[string]Factory{}
)

// RegisterDriver makes a driver available to `cairn agent --driver name`.
// The runc runtime (internal/runtime) registers as "runc" where the
// binary is composed (cmd/cairn).
func RegisterDriver(name string, f Factory) {
	driversMu.Lock()
	defer driversMu.Unlock()
	drivers[name] = f
}

// NewRuntime makes the runtime of driver name.
func NewRuntime(name string, o DriverOptions) (hostapi.Runtime, error) {
	driversMu.Lock()
	f, ok := drivers[name]
	var names []string
	for n := range drivers {
		names = append(names, n)
	}
	driversMu.Unlock()
	if !ok {
		sort.Strings(names)
		return nil, fmt.Errorf("--driver %q: unknown (known: %s)", name, strings.Join(names, ", "))
	}
	return f(o)
}

// TestDriverEnv must be 1 for the test-only driver testproc to run.
const TestDriverEnv = "CAIRN_AGENT_TEST_DRIVER"

func init() {
	RegisterDriver(testproc.Name, func(o DriverOptions) (hostapi.Runtime, error) {
		if os.Getenv(TestDriverEnv) != "1" {
			return nil, fmt.Errorf("--driver %s runs instances as plain host processes, without isolation, for tests only; set %s=1 to use it",
				testproc.Name, TestDriverEnv)
		}
		return testproc.New(filepath.Join(o.DataDir, "testproc"))
	})
}
