package runtime

import (
	"fmt"
	"slices"
	"unsafe"

	bpfseccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// compileSeccomp turns an OCI seccomp config (docker's profile, as the OCI runtimes get it) into
// a BPF program for the native architecture, as libseccomp would for runc; kiln compiles it
// itself only for the chroot rung, where no OCI runtime runs. Syscalls unknown to the
// architecture are skipped, as runc does; rules it cannot express are an error.
func compileSeccomp(sc *specs.LinuxSeccomp) ([]unix.SockFilter, error) {
	info, err := arch.GetInfo("")
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	defaultAct, err := seccompAction(sc.DefaultAction, sc.DefaultErrnoRet)
	if err != nil {
		return nil, err
	}
	// The library validates the default action by name: give it plain errno and patch in the
	// errno value below (an errno of 0 would turn every denied syscall into a success).
	policy := bpfseccomp.Policy{DefaultAction: bpfseccomp.ActionErrno}
	for _, rule := range sc.Syscalls {
		act, err := seccompAction(rule.Action, rule.ErrnoRet)
		if err != nil {
			return nil, err
		}
		conds, err := seccompConditions(rule.Args)
		if err != nil {
			return nil, fmt.Errorf("seccomp rule %v: %w", rule.Names, err)
		}
		g := bpfseccomp.SyscallGroup{Action: act}
		var seen []string
		for _, name := range rule.Names {
			if _, ok := info.SyscallNames[name]; !ok || slices.Contains(seen, name) {
				continue
			}
			seen = append(seen, name)
			if len(conds) == 0 {
				g.Names = append(g.Names, name)
			} else {
				g.NamesWithCondtions = append(g.NamesWithCondtions, bpfseccomp.NameWithConditions{Name: name, Conditions: conds})
			}
		}
		if len(seen) > 0 {
			policy.Syscalls = append(policy.Syscalls, g)
		}
	}
	if len(policy.Syscalls) == 0 {
		return nil, fmt.Errorf("seccomp: the profile names no syscall of %s", info.Name)
	}
	insts, err := policy.Assemble()
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	last, ok := insts[len(insts)-1].(bpf.RetConstant)
	if !ok || last.Val&unix.SECCOMP_RET_ACTION_FULL != uint32(bpfseccomp.ActionErrno) {
		return nil, fmt.Errorf("seccomp: unexpected program end %v", insts[len(insts)-1])
	}
	insts[len(insts)-1] = bpf.RetConstant{Val: uint32(defaultAct)}
	raw, err := bpf.Assemble(insts)
	if err != nil {
		return nil, fmt.Errorf("seccomp: %w", err)
	}
	out := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		out[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return out, nil
}

// seccompAction maps an OCI action to its return value; errno actions default to EPERM.
func seccompAction(a specs.LinuxSeccompAction, errno *uint) (bpfseccomp.Action, error) {
	switch a {
	case specs.ActAllow:
		return bpfseccomp.ActionAllow, nil
	case specs.ActErrno:
		e := uint(unix.EPERM)
		if errno != nil {
			e = *errno
		}
		return bpfseccomp.ActionErrno | bpfseccomp.Action(e&0xffff), nil
	case specs.ActKill, specs.ActKillThread:
		return bpfseccomp.ActionKillThread, nil
	case specs.ActKillProcess:
		return bpfseccomp.ActionKillProcess, nil
	case specs.ActTrap:
		return bpfseccomp.ActionTrap, nil
	case specs.ActLog:
		return bpfseccomp.ActionLog, nil
	case specs.ActTrace:
		return bpfseccomp.ActionTrace | bpfseccomp.Action(unix.EPERM), nil
	}
	return 0, fmt.Errorf("seccomp action %s is not supported with chroot isolation", a)
}

// seccompConditions maps a rule's argument checks (all of which must hold) to the library's.
func seccompConditions(args []specs.LinuxSeccompArg) (bpfseccomp.ArgumentConditions, error) {
	var out bpfseccomp.ArgumentConditions
	for _, a := range args {
		c := bpfseccomp.Condition{Argument: uint32(a.Index), Value: a.Value}
		switch a.Op {
		case specs.OpEqualTo:
			c.Operation = bpfseccomp.Equal
		case specs.OpNotEqual:
			c.Operation = bpfseccomp.NotEqual
		case specs.OpGreaterThan:
			c.Operation = bpfseccomp.GreaterThan
		case specs.OpGreaterEqual:
			c.Operation = bpfseccomp.GreaterOrEqual
		case specs.OpLessThan:
			c.Operation = bpfseccomp.LessThan
		case specs.OpLessEqual:
			c.Operation = bpfseccomp.LessOrEqual
		case specs.OpMaskedEqual:
			// (arg & mask) == 0 is the only masked test docker's profile makes (clone's namespace flags).
			if a.ValueTwo != 0 {
				return nil, fmt.Errorf("masked-equal with a non-zero value is not supported with chroot isolation")
			}
			c.Operation = bpfseccomp.BitsNotSet
		default:
			return nil, fmt.Errorf("seccomp operator %s is not supported with chroot isolation", a.Op)
		}
		out = append(out, c)
	}
	return out, nil
}

// installSeccomp loads prog on the calling thread (no_new_privs must be set, or CAP_SYS_ADMIN held).
func installSeccomp(prog []unix.SockFilter) error {
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	_, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog)))
	if errno != 0 {
		return fmt.Errorf("install seccomp filter: %w", errno)
	}
	return nil
}
