package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"
)

// coldstart measures what a clean clone pays before `go run ./cmd/cairn`
// prints anything: `go build ./cmd/cairn` with an empty GOCACHE (the module
// cache warm, GOFLAGS=-mod=mod), for two revisions of this repository side
// by side in one run, alternating. The base is a git revision (--base,
// extracted with git archive); the other side is the working tree (tracked
// and untracked files that git does not ignore) or --head REV. It reports
// the seconds and CPU seconds of each side and their ratio, then where the
// time of the last build of each side went: the 20 packages that took
// longest to compile and the time by module, read from go build
// -debug-trace.
func coldstart(args []string) error {
	fs := flag.NewFlagSet("coldstart", flag.ContinueOnError)
	base := fs.String("base", "HEAD", "git revision to compare against")
	head := fs.String("head", "", "git revision to measure (default: the working tree)")
	runs := fs.Int("runs", 1, "cold builds of each side (alternating)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	_, self, _, _ := runtime.Caller(0)
	repo := filepath.Dir(filepath.Dir(self))
	work, err := workDir()
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	type side struct {
		name, dir    string
		wall, cpu    []float64
		trace        string
		pkgs, module map[string]float64
	}
	headName := "working tree"
	if *head != "" {
		headName = *head
	}
	sides := []*side{{name: "base " + *base, dir: filepath.Join(work, "base")}, {name: headName, dir: filepath.Join(work, "head")}}
	if err := extractRev(repo, *base, sides[0].dir); err != nil {
		return err
	}
	if *head != "" {
		err = extractRev(repo, *head, sides[1].dir)
	} else {
		err = extractWorkTree(repo, sides[1].dir)
	}
	if err != nil {
		return err
	}
	for _, s := range sides {
		// Warm the module cache: only the build is measured.
		if err := run(s.dir, "go", "mod", "download"); err != nil {
			return err
		}
	}
	fmt.Printf("cold go build ./cmd/cairn (empty GOCACHE, warm module cache, GOFLAGS=-mod=mod), %d run(s) of each side, alternating, GOMAXPROCS of go: %d CPUs\n", *runs, runtime.NumCPU())
	for i := range *runs {
		for _, s := range sides {
			cache := filepath.Join(work, fmt.Sprint("gocache-", i, "-", filepath.Base(s.dir)))
			s.trace = filepath.Join(work, fmt.Sprint("trace-", filepath.Base(s.dir), ".json"))
			c := exec.Command("go", "build", "-debug-trace="+s.trace, "-o", filepath.Join(work, "cairn-"+filepath.Base(s.dir)), "./cmd/cairn")
			c.Dir = s.dir
			c.Env = append(os.Environ(), "GOCACHE="+cache, "GOFLAGS=-mod=mod")
			c.Stdout, c.Stderr = os.Stderr, os.Stderr
			t0, c0 := time.Now(), cpu(syscall.RUSAGE_CHILDREN)
			if err := c.Run(); err != nil {
				return fmt.Errorf("%s: go build: %w", s.name, err)
			}
			s.wall, s.cpu = append(s.wall, time.Since(t0).Seconds()), append(s.cpu, cpu(syscall.RUSAGE_CHILDREN)-c0)
			fmt.Printf("  run %d %-20s %6.1f s wall, %6.1f s cpu\n", i+1, s.name, s.wall[i], s.cpu[i])
			os.RemoveAll(cache)
		}
	}
	for _, s := range sides {
		mods, err := moduleOf(s.dir)
		if err != nil {
			return err
		}
		if s.pkgs, err = actionTimes(s.trace); err != nil {
			return err
		}
		s.module = map[string]float64{}
		for p, d := range s.pkgs {
			m := mods[p]
			if m == "" {
				m = "std"
				if p == "link" {
					m = "(link)"
				}
			}
			s.module[m] += d
		}
		fmt.Printf("\n== %s: top 20 packages by compile time (last run; wall time of the action, builds overlap)\n", s.name)
		printTop(s.pkgs, 20)
		fmt.Printf("\n== %s: compile time by module (sum over packages)\n", s.name)
		printTop(s.module, 0)
	}
	b, h := sides[0], sides[1]
	fmt.Printf("\n== cold build: %s vs %s (median of %d, one run on this machine, which is shared: read the ratio)\n", h.name, b.name, *runs)
	fmt.Printf("%s %.1f s (%.1f s cpu), %s %.1f s (%.1f s cpu): wall %.2f×, cpu %.2f×\n",
		h.name, median(h.wall), median(h.cpu), b.name, median(b.wall), median(b.cpu),
		median(h.wall)/median(b.wall), median(h.cpu)/median(b.cpu))
	js, _ := json.MarshalIndent(map[string]any{
		"base": *base, "head": headName,
		"base_s": median(b.wall), "head_s": median(h.wall), "time_ratio": median(h.wall) / median(b.wall),
		"base_cpu_s": median(b.cpu), "head_cpu_s": median(h.cpu), "cpu_ratio": median(h.cpu) / median(b.cpu),
		"base_packages": len(b.pkgs), "head_packages": len(h.pkgs),
	}, "", "  ")
	fmt.Printf("\nresults (json):\n%s\n", js)
	return nil
}

// extractRev writes the tree of a git revision into dir.
func extractRev(repo, rev, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return run(repo, "sh", "-c", fmt.Sprintf("git archive %s | tar -x -C %s", shellQuote(rev), shellQuote(dir)))
}

// extractWorkTree copies the files of the working tree that git tracks or
// would track (untracked, not ignored) into dir.
func extractWorkTree(repo, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return run(repo, "sh", "-c", fmt.Sprintf("git ls-files -z -c -o --exclude-standard | xargs -0 sh -c 'for f; do [ -e \"$f\" ] && printf \"%%s\\0\" \"$f\"; done' _ | tar --null -T - -cf - | tar -x -C %s", shellQuote(dir)))
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// moduleOf maps each package ./cmd/cairn depends on to its module path
// ("" for the standard library).
func moduleOf(dir string) (map[string]string, error) {
	c := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{with .Module}}{{.Path}}{{end}}", "./cmd/cairn")
	c.Dir = dir
	c.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	out, err := c.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %w", err)
	}
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		p, mod, _ := strings.Cut(l, " ")
		m[p] = mod
	}
	return m, nil
}

// actionTimes reads a go build -debug-trace file and returns the wall time
// of each package's build action and of the link ("link"), in seconds.
func actionTimes(path string) (map[string]float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var evs []struct {
		Name string  `json:"name"`
		Ph   string  `json:"ph"`
		TS   float64 `json:"ts"`
		Tid  int     `json:"tid"`
	}
	if err := json.Unmarshal(b, &evs); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	begin := map[string]float64{}
	times := map[string]float64{}
	for _, e := range evs {
		name, ok := strings.CutPrefix(e.Name, "Executing action (")
		if !ok {
			continue
		}
		name = strings.TrimSuffix(name, ")")
		var pkg string
		switch {
		case strings.HasPrefix(name, "build ") && !strings.HasPrefix(name, "build check cache"):
			pkg = strings.TrimPrefix(name, "build ")
		case strings.HasPrefix(name, "link "):
			pkg = "link"
		default:
			continue
		}
		key := fmt.Sprint(e.Tid, " ", pkg)
		switch e.Ph {
		case "B":
			begin[key] = e.TS
		case "E":
			if t0, ok := begin[key]; ok {
				times[pkg] += (e.TS - t0) / 1e6
			}
		}
	}
	return times, nil
}

// printTop prints the n largest entries of m (all with n 0) and their sum.
func printTop(m map[string]float64, n int) {
	keys := make([]string, 0, len(m))
	var sum float64
	for k, v := range m {
		keys = append(keys, k)
		sum += v
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] })
	if n == 0 || n > len(keys) {
		n = len(keys)
	}
	for _, k := range keys[:n] {
		fmt.Printf("  %6.2f s  %5.1f%%  %s\n", m[k], 100*m[k]/sum, k)
	}
	fmt.Printf("  %6.2f s  total over %d entries\n", sum, len(keys))
}
