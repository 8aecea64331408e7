package agent

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/cairnhq/cairn/internal/api"
	"github.com/cairnhq/cairn/internal/hostapi"
)

func TestParseCapacity(t *testing.T) {
	for in, want := range map[string]hostapi.Capacity{
		"":                               {},
		"cpu=2,memory=4GiB,instances=50": {CPU: 2, MemoryBytes: 4 << 30, Instances: 50},
		"instances=3":                    {Instances: 3},
		" cpu=0.5 , memory=512M":         {CPU: 0.5, MemoryBytes: 512e6},
		"memory=1000":                    {MemoryBytes: 1000},
	} {
		got, err := ParseCapacity(in)
		if err != nil || got != want {
			t.Errorf("ParseCapacity(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"cpu", "cpu=", "cpu=x", "cpu=-1", "cpu=NaN", "gpu=1", "cpu=1,cpu=2",
		"memory=4XB", "memory=-1", "memory=99999999999TiB", "instances=1.5", "instances=-2"} {
		if _, err := ParseCapacity(in); err == nil {
			t.Errorf("ParseCapacity(%q) accepted", in)
		}
	}
}

func FuzzParseCapacity(f *testing.F) {
	for _, s := range []string{"cpu=2,memory=4GiB,instances=50", "memory=1T", "cpu=1e3", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCapacity(s)
		if err != nil {
			return
		}
		if c.CPU < 0 || c.MemoryBytes < 0 || c.Instances < 0 {
			t.Fatalf("ParseCapacity(%q) = %+v", s, c)
		}
	})
}

// TestRegistrationAccel: a microVM host's acceleration is kvm or tcg,
// and its kernel digest 64 lowercase hex digits.
func TestRegistrationAccel(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	for _, c := range []struct {
		accel, sum string
		ok         bool
	}{{"", "", true}, {"tcg", sum, true}, {"kvm", sum, true}, {"hvf", sum, false}, {"tcg", strings.ToUpper(sum), false}, {"tcg", "abc", false}} {
		reg := api.Registration{Driver: "qemu-microvm", Isolation: "microvm", Accel: c.accel, KernelSHA256: c.sum}
		if err := api.CheckRegistration(&reg); (err == nil) != c.ok {
			t.Errorf("accel %q, sha %q: %v", c.accel, c.sum, err)
		}
	}
}

// FuzzWireBodies: the agent's wire records decode or fail, and what
// decodes validates or fails, without panics.
func FuzzWireBodies(f *testing.F) {
	f.Add([]byte(`{"hostname":"h","driver":"runc","isolation":"container","capacity":{"cpu":2,"memory_bytes":1,"instances":3},"agent_url":"http://127.0.0.1:1"}`))
	f.Add([]byte(`{"hostname":"h","driver":"qemu-microvm","isolation":"microvm","accel":"tcg","kernel_sha256":"c3718796ffdb206cc149543cf925b868d9cd0cb504ba554539a01303179505aa"}`))
	f.Add([]byte(`{"used":{"instances":1},"instances":[{"id":"a","state":"healthy","exit_code":2,"last_log":["x"]}]}`))
	f.Add([]byte(`{"gen":"ab","instances":[{"id":"a","cmd":["/app"],"port":8080,"limits":{"cpu":1}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var reg api.Registration
		if json.Unmarshal(b, &reg) == nil {
			_ = api.CheckRegistration(&reg)
		}
		var hb api.Heartbeat
		_ = json.Unmarshal(b, &hb)
		var ds api.DesiredSet
		_ = json.Unmarshal(b, &ds)
	})
}
