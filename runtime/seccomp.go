package runtime

import (
	"fmt"
	"os"

	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// seccompConfig builds the syscall filter; it needs cfg's capabilities because docker's profile
// allows some syscalls only to processes holding the matching capability.
func seccompConfig(s Spec, cfg *specs.Spec) (*specs.LinuxSeccomp, error) {
	switch s.Seccomp {
	case SeccompUnconfined:
		return nil, nil
	case SeccompDefault:
		sc, err := seccomp.GetDefaultProfile(cfg)
		if err != nil {
			return nil, fmt.Errorf("default seccomp profile: %w", err)
		}
		sc.Architectures = usableArches(sc.Architectures)
		return sc, nil
	case SeccompProfileFile:
		body, err := os.ReadFile(s.SeccompProfile)
		if err != nil {
			return nil, fmt.Errorf("seccomp profile: %w", err)
		}
		sc, err := seccomp.LoadProfile(string(body), cfg)
		if err != nil {
			return nil, fmt.Errorf("seccomp profile %s: %w", s.SeccompProfile, err)
		}
		sc.Architectures = usableArches(sc.Architectures)
		return sc, nil
	}
	return nil, fmt.Errorf("unknown seccomp mode %d", s.Seccomp)
}

// usableArches drops the x32 ABI from a filter's architectures when no process here can make
// x32 system calls: the kernel was built without it (Debian's default) or an enclosing filter
// refuses them. libseccomp compiles a filter per architecture, and runc spends a third of its
// start-up compiling docker's profile for x32; an ABI that cannot be entered needs no filter.
func usableArches(arches []specs.Arch) []specs.Arch {
	if x32Usable() {
		return arches
	}
	out := make([]specs.Arch, 0, len(arches))
	for _, a := range arches {
		if a != specs.ArchX32 {
			out = append(out, a)
		}
	}
	return out
}
