package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/testimage"
	"github.com/kiln-build/kiln/runtime"
)

// BenchmarkRunRmTrue times a warm `kiln run --rm busybox true` (a whole kiln process, as a user
// runs it) next to bare `runc run` of a bundle over the same rootfs: the floor kiln adds to.
// Goal (issue 11): at most 1.3x the bare runtime.
func BenchmarkRunRmTrue(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	if _, err := exec.LookPath("runc"); err != nil {
		b.Skip("needs runc")
	}
	root := b.TempDir()
	s, err := cache.Open(root)
	if err != nil {
		b.Fatal(err)
	}
	desc, err := s.WriteImage(context.Background(), testimage.Busybox(b))
	if err != nil {
		b.Fatal(err)
	}
	n, _ := cache.ParseName("busybox")
	if err := s.Tag(context.Background(), n, desc); err != nil {
		b.Fatal(err)
	}
	s.Close()
	kilnRun := func(args ...string) func() error {
		return func() error {
			cmd := exec.Command(os.Args[0], append([]string{"--runtime", "runc", "run", "--rm"}, args...)...)
			cmd.Env = append(os.Environ(), execEnv+"=1", "KILN_ROOT="+root)
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		}
	}
	b.Run("runc", func(b *testing.B) { benchMedian(b, bareRunc(b)) })
	b.Run("kiln-network-none", func(b *testing.B) { benchMedian(b, kilnRun("--network", "none", "busybox", "true")) })
	b.Run("kiln", func(b *testing.B) { benchMedian(b, kilnRun("busybox", "true")) })
}

// bareRunc prepares a bundle with kiln's config over a plain busybox rootfs and returns one run of it.
func bareRunc(b *testing.B) func() error {
	dir := b.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	testimage.BusyboxRootfs(b, rootfs)
	state := b.TempDir()
	sp := runtime.Spec{ID: "bare", Upper: rootfs, BundleDir: dir, Args: []string{"true"}, Network: runtime.NetworkNone}
	if _, err := runtime.WriteConfig(sp, rootfs); err != nil {
		b.Fatal(err)
	}
	i := 0
	return func() error {
		i++
		out, err := exec.Command("runc", "--root", state, "run", "--bundle", dir, fmt.Sprintf("bare%d", i)).CombinedOutput()
		if err != nil {
			return fmt.Errorf("runc run: %v: %s", err, out)
		}
		return nil
	}
}

// benchMedian runs f once to warm up, then per iteration, and reports the median wall time and
// the mean CPU time of the processes f ran (less at the mercy of a busy machine than wall time).
func benchMedian(b *testing.B, f func() error) {
	if err := f(); err != nil {
		b.Fatal(err)
	}
	var times []time.Duration
	cpu0 := childrenCPU()
	for b.Loop() {
		start := time.Now()
		if err := f(); err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(start))
	}
	b.ReportMetric(float64((childrenCPU()-cpu0).Nanoseconds())/float64(len(times)), "cpu-ns/op")
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Nanoseconds()), "median-ns/op")
}

// childrenCPU is the user and system time of this process's waited-for children so far.
func childrenCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru) //nolint:errcheck // cannot fail with these arguments
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
