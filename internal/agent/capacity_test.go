package agent

import (
	"encoding/json"
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

// FuzzWireBodies: the agent's wire records decode or fail, and what
// decodes validates or fails, without panics.
func FuzzWireBodies(f *testing.F) {
	f.Add([]byte(`{"hostname":"h","driver":"runc","isolation":"container","capacity":{"cpu":2,"memory_bytes":1,"instances":3},"agent_url":"http://127.0.0.1:1"}`))
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
