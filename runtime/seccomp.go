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
		return sc, nil
	}
	return nil, fmt.Errorf("unknown seccomp mode %d", s.Seccomp)
}
