package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

const distAddr = "127.0.0.1:17950"

// oci pushes and pulls a 200 MB, 5-layer image to cairn's registry and to
// CNCF distribution v3.1.2 (filesystem storage), alternating, and reports
// throughput ratios.
func oci() error {
	work, err := workDir()
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	gobin := filepath.Join(work, "gobin")
	fmt.Println("building CNCF distribution v3.1.2")
	install := exec.Command("go", "install", "github.com/distribution/distribution/v3/cmd/registry@v3.1.2")
	install.Env = append(os.Environ(), "GOBIN="+gobin)
	install.Stderr = os.Stderr
	if err := install.Run(); err != nil {
		return fmt.Errorf("go install distribution: %w", err)
	}
	conf := filepath.Join(work, "dist.yml")
	os.WriteFile(conf, []byte(fmt.Sprintf(`version: 0.1
log: {level: error}
storage:
  filesystem: {rootdirectory: %s}
  delete: {enabled: true}
http: {addr: %s}
`, filepath.Join(work, "dist"), distAddr)), 0o644)
	dist := exec.Command(filepath.Join(gobin, "registry"), "serve", conf)
	dist.Stdout, dist.Stderr = io.Discard, io.Discard
	if err := dist.Start(); err != nil {
		return err
	}
	defer func() { dist.Process.Kill(); dist.Wait() }()
	bin, err := buildCairn(work)
	if err != nil {
		return err
	}
	stop, err := serve(bin, "--data", filepath.Join(work, "cairn-data"), "--api-addr", apiAddr, "--edge-addr", edgeAddr, "--token", benchToken)
	if err != nil {
		return err
	}
	defer stop()
	if err := waitPort(distAddr); err != nil {
		return err
	}
	targets := []struct {
		label, host string
		opts        []remote.Option
	}{
		{"distribution", distAddr, nil},
		{"cairn", apiAddr, []remote.Option{remote.WithAuth(&authn.Basic{Username: "bench", Password: benchToken})}},
	}
	push := map[string][]float64{}
	pull := map[string][]float64{}
	const layers, layerSize = 5, 40 << 20
	for round := range 3 {
		img, err := random.Image(layerSize, layers)
		if err != nil {
			return err
		}
		for _, tg := range targets {
			ref, _ := name.ParseReference(fmt.Sprintf("%s/bench:r%d", tg.host, round), name.Insecure)
			t0 := time.Now()
			if err := remote.Write(ref, img, tg.opts...); err != nil {
				return fmt.Errorf("push to %s: %w", tg.label, err)
			}
			push[tg.label] = append(push[tg.label], float64(layers*layerSize)/time.Since(t0).Seconds()/1e6)
			t0 = time.Now()
			got, err := remote.Image(ref, tg.opts...)
			if err != nil {
				return err
			}
			if err := readAll(got); err != nil {
				return fmt.Errorf("pull from %s: %w", tg.label, err)
			}
			pull[tg.label] = append(pull[tg.label], float64(layers*layerSize)/time.Since(t0).Seconds()/1e6)
		}
	}
	fmt.Printf("\n== OCI push/pull of a %d MB, %d-layer image (median of 3, alternating)\n", layers*layerSize>>20, layers)
	fmt.Printf("%-14s %12s %12s\n", "", "push MB/s", "pull MB/s")
	for _, tg := range targets {
		fmt.Printf("%-14s %12.0f %12.0f\n", tg.label, median(push[tg.label]), median(pull[tg.label]))
	}
	fmt.Printf("ratio cairn/distribution: push %.2f×, pull %.2f×\n",
		median(push["cairn"])/median(push["distribution"]), median(pull["cairn"])/median(pull["distribution"]))
	return nil
}

// readAll reads every layer of img, checking the digests as it goes.
func readAll(img v1.Image) error {
	ls, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range ls {
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, rc)
		if cerr := rc.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}
