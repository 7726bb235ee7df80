package runtime

import (
	goruntime "runtime"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The filter keeps every ABI a process here can enter and drops x32 only where it cannot be used.
func TestSeccompArchesMatchTheKernel(t *testing.T) {
	if goruntime.GOARCH != "amd64" {
		t.Skip("x32 exists only on amd64")
	}
	s, rootfs := configFixture(t)
	cfg, err := WriteConfig(s, rootfs)
	if err != nil {
		t.Fatal(err)
	}
	arches := cfg.Linux.Seccomp.Architectures
	if !slices.Contains(arches, specs.ArchX86_64) || !slices.Contains(arches, specs.ArchX86) {
		t.Fatalf("the native and i386 ABIs must stay filtered, got %v", arches)
	}
	if got, want := slices.Contains(arches, specs.ArchX32), x32Usable(); got != want {
		t.Errorf("x32 in the filter = %v, but x32 system calls usable here = %v", got, want)
	}
	if got := usableArches([]specs.Arch{specs.ArchX86_64, specs.ArchX32}); x32Usable() != slices.Contains(got, specs.ArchX32) {
		t.Errorf("usableArches = %v", got)
	}
}
