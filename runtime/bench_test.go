package runtime

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// BenchmarkRunTrue measures Run of `true` from start to exit: overlay mount, config, runtime, teardown.
func BenchmarkRunTrue(b *testing.B) {
	for _, rt := range runtimes {
		b.Run(rt, func(b *testing.B) {
			state := b.TempDir()
			requireRuntime(b, rt, state)
			base := b.TempDir()
			r := testRuntime(b, rt, state)
			var times []time.Duration
			for i := 0; b.Loop(); i++ {
				dir := filepath.Join(base, fmt.Sprint(i))
				s := Spec{ID: fmt.Sprintf("bench%d", i), Lower: []string{lowerDir(b)}, Upper: filepath.Join(dir, "upper"),
					Work: filepath.Join(dir, "work"), BundleDir: filepath.Join(dir, "bundle"), Args: []string{"true"}}
				os.MkdirAll(s.Upper, 0o755)
				start := time.Now()
				if st, err := r.Run(context.Background(), s); err != nil || st != 0 {
					b.Fatalf("status %d: %v", st, err)
				}
				times = append(times, time.Since(start))
			}
			reportMedian(b, times)
		})
	}
}

// BenchmarkRuntimeDirect runs `<runtime> run` on one prepared bundle: the floor kiln adds to.
func BenchmarkRuntimeDirect(b *testing.B) {
	for _, rt := range runtimes {
		b.Run(rt, func(b *testing.B) {
			state := b.TempDir()
			requireRuntime(b, rt, state)
			dir := b.TempDir()
			s := Spec{ID: "direct", Lower: []string{lowerDir(b)}, Upper: filepath.Join(dir, "upper"),
				Work: filepath.Join(dir, "work"), BundleDir: filepath.Join(dir, "bundle"), Args: []string{"true"}}
			os.MkdirAll(s.Upper, 0o755)
			rootfs, err := mountRootfs(s.BundleDir, s.Lower, s.Upper, s.Work)
			if err != nil {
				b.Fatal(err)
			}
			defer unmountRootfs(s.BundleDir)
			if _, err := WriteConfig(s, rootfs); err != nil {
				b.Fatal(err)
			}
			var times []time.Duration
			for i := 0; b.Loop(); i++ {
				start := time.Now()
				out, err := exec.Command(rt, "--root", filepath.Join(state, rt), "run", "--bundle", s.BundleDir, fmt.Sprintf("d%d", i)).CombinedOutput()
				if err != nil {
					b.Fatalf("%s run: %v: %s", rt, err, out)
				}
				times = append(times, time.Since(start))
			}
			reportMedian(b, times)
		})
	}
}

func reportMedian(b *testing.B, times []time.Duration) {
	slices.Sort(times)
	if len(times) > 0 {
		b.ReportMetric(float64(times[len(times)/2].Nanoseconds()), "median-ns/op")
	}
}
