package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/cairnhq/cairn/internal/meta"
)

// printVersionBuild prints, for `cairn version show`, the source snapshot
// a version keeps, the build that made it and its newest rebuild verdict
// (nothing for a version without them).
func printVersionBuild(w io.Writer, v *meta.Version) {
	if v.SourceSnapshot && v.SourceSHA256 != "" {
		fmt.Fprintf(w, "source:      sha256 %s (snapshot)\n", v.SourceSHA256)
	}
	if b := v.Build; b != nil {
		fmt.Fprintf(w, "build:       %s in %s, builder %s\n", b.BuildID, msDuration(b.DurationMS),
			builderName(meta.BuildSpec{Builder: b.Builder, BuilderRef: b.BuilderRef}))
		fmt.Fprintf(w, "build cmd:   %s\n", b.Command)
		fmt.Fprintf(w, "build out:   %s\n", b.Output)
		for _, k := range slices.Sorted(maps.Keys(b.Env)) {
			fmt.Fprintf(w, "build env:   %s=%s\n", k, b.Env[k])
		}
		fmt.Fprintf(w, "build epoch: SOURCE_DATE_EPOCH=%d\n", b.SourceDateEpoch)
		if b.Network {
			fmt.Fprintf(w, "build net:   yes: its output may depend on what the network served\n")
		}
		fmt.Fprintf(w, "build log:   sha256 %s (cairn logs --build %s)\n", b.LogSHA256, b.BuildID)
	}
	if r := v.Rebuild; r != nil {
		fmt.Fprintf(w, "rebuild:     %s\n", rebuildLine(r))
	}
}

// rebuildLine is one line for a version's newest rebuild verdict.
func rebuildLine(r *meta.Rebuild) string {
	s := fmt.Sprintf("%s at %s (%s, sha256 %s…)", r.Verdict, r.At.UTC().Format(time.RFC3339), r.BuildID, shortSHA(r.SHA256))
	if len(r.Differs) > 0 {
		s += ": " + strings.Join(r.Differs, ", ")
	}
	return s
}

// printHistoryBuild prints, for `cairn audit`, how the version that
// served was built and its newest rebuild verdict.
func printHistoryBuild(w io.Writer, v *meta.Version) {
	if b := v.Build; b != nil {
		fmt.Fprintf(w, "  build    %s  builder %s  %q → %s\n", b.BuildID,
			builderName(meta.BuildSpec{Builder: b.Builder, BuilderRef: b.BuilderRef}), b.Command, b.Output)
	}
	if r := v.Rebuild; r != nil {
		fmt.Fprintf(w, "  rebuild  %s\n", rebuildLine(r))
	}
}
