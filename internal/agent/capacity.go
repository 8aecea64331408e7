package agent

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/cairnhq/cairn/internal/hostapi"
)

// ParseCapacity reads --capacity: comma-separated key=value pairs of
// cpu (cores, e.g. 2 or 0.5), memory (bytes with an optional unit: k, M,
// G, T decimal or KiB, MiB, GiB, TiB binary) and instances (a count). Keys
// may be left out (0: not limited); each at most once.
func ParseCapacity(s string) (hostapi.Capacity, error) {
	var c hostapi.Capacity
	if strings.TrimSpace(s) == "" {
		return c, nil
	}
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || v == "" {
			return c, fmt.Errorf("capacity %.40q: want key=value (cpu=2,memory=4GiB,instances=50)", part)
		}
		if seen[k] {
			return c, fmt.Errorf("capacity: %s given twice", k)
		}
		seen[k] = true
		switch k {
		case "cpu":
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) || f > 1e6 {
				return c, fmt.Errorf("capacity: cpu %.40q is not a number of cores", v)
			}
			c.CPU = f
		case "memory":
			n, err := ParseBytes(v)
			if err != nil {
				return c, fmt.Errorf("capacity: memory: %w", err)
			}
			c.MemoryBytes = n
		case "instances":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 1_000_000 {
				return c, fmt.Errorf("capacity: instances %.40q is not a count", v)
			}
			c.Instances = n
		default:
			return c, fmt.Errorf("capacity: unknown key %.40q (known: cpu, memory, instances)", k)
		}
	}
	return c, nil
}

var units = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"k", 1e3}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}, {"B", 1},
}

// ParseBytes reads a byte count with an optional unit (4GiB, 512M, 1000).
func ParseBytes(s string) (int64, error) {
	num, mult := s, int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%.40q is not a byte count such as 4GiB", s)
	}
	return n * mult, nil
}
