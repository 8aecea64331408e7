package sqlstore

import (
	"strconv"
	"strings"
	"testing"
)

func TestBatches(t *testing.T) {
	var ss []string
	for i := range 2*batchSize + 3 {
		ss = append(ss, strconv.Itoa(i))
	}
	var got []string
	err := batches(ss, "(?, ?)", func(list string, batch []string) error {
		if n := strings.Count(list, "(?, ?)"); n != len(batch) || len(batch) > batchSize {
			t.Errorf("list of %d groups for a batch of %d", n, len(batch))
		}
		got = append(got, batch...)
		return nil
	})
	if err != nil || strings.Join(got, ",") != strings.Join(ss, ",") {
		t.Errorf("batches saw %d values in order %v, err %v; want all %d in order", len(got), strings.Join(got, ",") == strings.Join(ss, ","), err, len(ss))
	}
	if err := batches(nil, "?", func(string, []string) error { t.Error("called for no values"); return nil }); err != nil {
		t.Error(err)
	}
}
