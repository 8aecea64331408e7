// Package metricstest reads what GET /metrics serves, for tests.
package metricstest

import (
	"strconv"
	"strings"
	"testing"
)

// Parse reads the Prometheus text format into samples by name with labels
// (`name{labels}`). It fails t on a malformed sample line, and on what the
// format forbids of # TYPE lines: a second one for a family, or one after
// the family's samples.
func Parse(t testing.TB, text string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	typed, sampled := map[string]bool{}, map[string]bool{}
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			fam := strings.Fields(rest)[0]
			if typed[fam] || sampled[fam] {
				t.Errorf("second # TYPE line for %s, or one after its samples", fam)
			}
			typed[fam] = true
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		j := strings.IndexAny(line, "{ ")
		if i < 0 {
			t.Fatalf("bad sample line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample line %q", line)
		}
		out[line[:i]] = v
		name := line[:j]
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && typed[base] {
				name = base
			}
		}
		sampled[name] = true
	}
	return out
}
