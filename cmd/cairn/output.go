package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// printJSON writes v as indented JSON.
func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// humanBytes formats n with decimal units: 999 B, 1.2 kB, 3.4 MB.
func humanBytes(n int64) string {
	if n < 1000 {
		return fmt.Sprintf("%d B", n)
	}
	f := float64(n)
	for _, unit := range []string{"kB", "MB", "GB", "TB", "PB"} {
		f /= 1000
		if f < 999.95 {
			return fmt.Sprintf("%.1f %s", f, unit)
		}
	}
	return fmt.Sprintf("%.1f EB", f/1000)
}

// shortSHA abbreviates a hex digest to 12 digits.
func shortSHA(s string) string {
	if len(s) <= 12 {
		return s
	}
	return s[:12]
}

// formatTime prints a record time in local time, minute precision.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04")
}

// progressBar returns a byte progress bar on stderr, or nil when stderr is
// not a terminal or --json is set. total < 0 shows a spinner.
func (a *app) progressBar(total int64, desc string) *progressbar.ProgressBar {
	if !a.stderrTTY || a.json {
		return nil
	}
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(a.stderr),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(20),
		progressbar.OptionThrottle(65*time.Millisecond),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionClearOnFinish(),
	)
}

// barFunc adapts a possibly nil bar to a progress callback.
func barFunc(bar *progressbar.ProgressBar) func(int64) {
	if bar == nil {
		return nil
	}
	return func(n int64) { _ = bar.Add64(n) }
}

// endBar removes a bar from the terminal, finished or not.
func endBar(bar *progressbar.ProgressBar) {
	if bar != nil {
		_ = bar.Finish()
		_ = bar.Clear()
	}
}
