package runtime

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkRunBridge measures Run of `true` on a bridge network with one published port: what
// the network adds to BenchmarkRunTrue (netns, veth, address, iptables, teardown).
func BenchmarkRunBridge(b *testing.B) {
	rt := "runc"
	state := b.TempDir()
	requireRuntime(b, rt, state)
	br := Bridge{Name: fmt.Sprintf("kb%d", os.Getpid()%100000), Subnet: netip.MustParsePrefix("10.252.7.0/24")}
	defer func() { removeBridgeRules(context.Background(), br); removeBridge(br) }()
	base := b.TempDir()
	r := testRuntime(b, rt, state)
	var times []time.Duration
	for i := 0; b.Loop(); i++ {
		dir := filepath.Join(base, fmt.Sprint(i))
		s := Spec{ID: fmt.Sprintf("nb%d", i), Lower: []string{lowerDir(b)}, Upper: filepath.Join(dir, "upper"),
			Work: filepath.Join(dir, "work"), BundleDir: filepath.Join(dir, "bundle"), Args: []string{"true"},
			Network: NetworkBridge, Bridge: br, Ports: []PortMapping{{HostPort: 39999, ContainerPort: 80}}}
		os.MkdirAll(s.Upper, 0o755)
		start := time.Now()
		if st, err := r.Run(context.Background(), s); err != nil || st != 0 {
			b.Fatalf("status %d: %v", st, err)
		}
		times = append(times, time.Since(start))
	}
	reportMedian(b, times)
}

// BenchmarkExec measures Exec of `true` in a running container.
func BenchmarkExec(b *testing.B) {
	rt := "runc"
	state := b.TempDir()
	requireRuntime(b, rt, state)
	s := testSpec(b, rt, state, "sleep", "60")
	stop := runContainerInBackground(b, s)
	defer stop()
	var times []time.Duration
	for b.Loop() {
		start := time.Now()
		if st, err := execIn(context.Background(), b, state, s.ID, ExecSpec{Args: []string{"true"}}); err != nil || st != 0 {
			b.Fatalf("status %d: %v", st, err)
		}
		times = append(times, time.Since(start))
	}
	reportMedian(b, times)
}
