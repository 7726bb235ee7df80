package build

import (
	"context"
	"fmt"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// dispatch applies one instruction to the stage: a config change, a vertex, or both.
func (sb *stageBuilder) dispatch(ctx context.Context, in Instruction) error {
	if err := sb.expand(in.Command); err != nil {
		return err
	}
	sb.checkInstruction()
	switch c := in.Command.(type) {
	case *instructions.ArgCommand:
		sb.arg(c)
	case *instructions.WorkdirCommand:
		return sb.workdir(ctx, c.Path)
	case *instructions.CopyCommand:
		return sb.copyCmd(ctx, c)
	case *instructions.AddCommand:
		return sb.addCmd(ctx, c)
	case *instructions.RunCommand:
		return sb.run(ctx, c)
	default:
		m := metaState{shell: sb.ps.shell, cmdSet: sb.cmdSet}
		ok, err := applyMeta(&sb.ps.Config, &m, in.Command)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("instruction %s: %w", in.Command.Name(), errUnsupported)
		}
		sb.ps.shell, sb.cmdSet = m.shell, m.cmdSet
		if _, onbuild := in.Command.(*instructions.OnbuildCommand); onbuild {
			return nil // BuildKit writes no history for ONBUILD
		}
	}
	sb.step(nil)
	return nil
}

// step records a history entry for the current instruction.
func (sb *stageBuilder) step(v *Vertex) {
	sb.ps.Steps = append(sb.ps.Steps, Step{CreatedBy: sb.createdBy(), Vertex: v})
}

// createdBy is the current instruction's history text in BuildKit's words: after variable
// expansion and with the values the config took ("LABEL version=1.0", not "${VERSION}");
// steps that run or copy end in " # buildkit" as BuildKit's do.
func (sb *stageBuilder) createdBy() string {
	cfg := &sb.ps.Config.Config
	switch c := sb.instr.Command.(type) {
	case *instructions.ArgCommand:
		parts := make([]string, 0, len(c.Args))
		for _, a := range c.Args {
			if v, ok := sb.ps.Args.Get(a.Key); ok {
				parts = append(parts, a.Key+"="+v)
			} else {
				parts = append(parts, a.Key)
			}
		}
		return "ARG " + strings.Join(parts, " ")
	case *instructions.EnvCommand:
		return "ENV" + kvPairs(c.Env)
	case *instructions.LabelCommand:
		return "LABEL" + kvPairs(c.Labels)
	case *instructions.MaintainerCommand:
		return "MAINTAINER " + c.Maintainer
	case *instructions.WorkdirCommand:
		return "WORKDIR " + cfg.WorkingDir
	case *instructions.UserCommand:
		return "USER " + c.User
	case *instructions.CmdCommand:
		return fmt.Sprintf("CMD %q", cfg.Cmd)
	case *instructions.EntrypointCommand:
		return fmt.Sprintf("ENTRYPOINT %q", cfg.Entrypoint)
	case *instructions.ExposeCommand:
		return fmt.Sprintf("EXPOSE %v", exposedList(c.Ports))
	case *instructions.VolumeCommand:
		return fmt.Sprintf("VOLUME %v", c.Volumes)
	case *instructions.StopSignalCommand:
		return "STOPSIGNAL " + c.Signal
	case *instructions.ShellCommand:
		return fmt.Sprintf("SHELL %v", c.Shell)
	case *instructions.HealthCheckCommand:
		h := c.Health
		return fmt.Sprintf("HEALTHCHECK {Test:%v Interval:%v Timeout:%v StartPeriod:%v StartInterval:%v Retries:%d}",
			h.Test, h.Interval, h.Timeout, h.StartPeriod, h.StartInterval, h.Retries)
	case *instructions.RunCommand:
		return "RUN " + sb.runHistory(c) + " # buildkit"
	case *instructions.CopyCommand:
		return copyHistory("COPY", c.Parents, c.Chown, c.Chmod, c.SourcesAndDest)
	case *instructions.AddCommand:
		return copyHistory("ADD", false, c.Chown, c.Chmod, c.SourcesAndDest)
	}
	return sb.instr.Source
}

func kvPairs(kvs instructions.KeyValuePairs) string {
	var b strings.Builder
	for _, kv := range kvs {
		b.WriteString(" " + kv.String())
	}
	return b.String()
}

// runHistory is BuildKit's RUN text: the stage's ARGs as "|N K=V…" (ENV wins, unset is
// empty), then the argv.
func (sb *stageBuilder) runHistory(c *instructions.RunCommand) string {
	var parts []string
	env := kvList(sb.ps.Config.Config.Env)
	for _, k := range sb.argNames {
		v, ok := env.Get(k)
		if !ok {
			v, _ = sb.ps.Args.Get(k)
		}
		parts = append(parts, k+"="+v)
	}
	if len(parts) > 0 {
		parts = append([]string{fmt.Sprintf("|%d", len(parts))}, parts...)
	}
	return strings.Join(append(parts, sb.runArgs(c)...), " ")
}

func copyHistory(name string, parents bool, chown, chmod string, sd instructions.SourcesAndDest) string {
	var b strings.Builder
	b.WriteString(name)
	if parents {
		b.WriteString(" --parents")
	}
	if chown != "" {
		b.WriteString(" --chown=" + chown)
	}
	if chmod != "" {
		b.WriteString(" --chmod=" + chmod)
	}
	for _, src := range sd.SourcePaths {
		b.WriteString(" " + src)
	}
	for _, src := range sd.SourceContents {
		b.WriteString(" <<" + src.Path)
	}
	return b.String() + " " + sd.DestPath + " # buildkit"
}

// exposedList is EXPOSE's ports as "port/proto", ranges spread, in the order written; expose
// has validated them.
func exposedList(ports []string) []string {
	var out []string
	for _, p := range ports {
		cfg := &v1.Config{}
		if expose(cfg, []string{p}) == nil {
			keys := sortedKeys(cfg.ExposedPorts)
			sort.SliceStable(keys, func(i, j int) bool { return len(keys[i]) < len(keys[j]) }) // numeric order in a range
			out = append(out, keys...)
		}
	}
	return out
}

// arg declares build args in the stage: --build-arg, then the default, then the global value.
func (sb *stageBuilder) arg(c *instructions.ArgCommand) {
	for _, kv := range c.Args {
		if !slices.Contains(sb.argNames, kv.Key) {
			sb.argNames = append(sb.argNames, kv.Key)
		}
		sb.ps.declared = append(sb.ps.declared, kv.Key)
		val, ok := sb.p.opts.BuildArgs[kv.Key]
		if ok {
			sb.p.usedArgs[kv.Key] = true
		} else if kv.Value != nil {
			val, ok = *kv.Value, true
		} else {
			val, ok = sb.p.metaArgs.Get(kv.Key)
		}
		if ok {
			sb.ps.Args = sb.ps.Args.set(kv.Key, val)
		}
	}
}

// workdir sets WorkingDir and plans the directory's creation, as docker does: an absolute
// path is kept as written ("/tmp/" stays "/tmp/"), a relative one is joined to the previous.
func (sb *stageBuilder) workdir(ctx context.Context, p string) error {
	cfg := &sb.ps.Config.Config
	cfg.WorkingDir = workdirPath(cfg.WorkingDir, p)
	v := sb.p.add(ctx, sb.vertex(&mkdirOp{path: sb.cwd(), user: cfg.User}))
	sb.ps.Tip = v
	sb.step(v)
	return nil
}

// cwd is the clean working directory ("" when unset), what keys and containers use, so a
// WORKDIR written with a trailing slash keys the same as one without.
func (sb *stageBuilder) cwd() string {
	if wd := sb.ps.Config.Config.WorkingDir; wd != "" {
		return path.Clean(wd)
	}
	return ""
}

// vertex is a vertex for o made by the current instruction, over the stage's filesystem.
func (sb *stageBuilder) vertex(o op, deps ...*Vertex) *Vertex {
	return &Vertex{Name: sb.name(), Instr: strings.ToUpper(sb.instr.Command.Name()), Stage: sb.st.Index,
		Line: sb.instr.Line, Parent: sb.ps.Tip, Deps: deps, op: o}
}

// name is the display name of the current instruction's vertex: "[stage-2 2/5] COPY a b".
func (sb *stageBuilder) name() string {
	text := strings.Join(strings.Fields(sb.instr.Source), " ")
	if len(text) > 120 {
		text = text[:117] + "..."
	}
	if sb.onbuild {
		text = "ONBUILD " + text
	}
	return sb.stepPrefix() + text
}

// stepPrefix numbers the next shown step of the stage, as BuildKit does: "[2/5] ", "[ 2/12] ",
// "[build 3/4] "; the count is the stage's FROM image and its ADD, COPY, RUN and WORKDIR steps.
func (sb *stageBuilder) stepPrefix() string {
	label := ""
	if sb.st.Name != "" {
		label = sb.st.Name + " "
	} else if len(sb.p.f.Stages) > 1 {
		label = "stage-" + strconv.Itoa(sb.st.Index) + " "
	}
	sb.index++
	total := max(sb.total, sb.index)
	return fmt.Sprintf("[%s%*d/%d] ", label, len(strconv.Itoa(total)), sb.index, total)
}

// countSteps counts the instructions that show as numbered steps.
func countSteps(ins []Instruction) int {
	n := 0
	for _, in := range ins {
		switch in.Command.(type) {
		case *instructions.AddCommand, *instructions.CopyCommand, *instructions.RunCommand, *instructions.WorkdirCommand:
			n++
		}
	}
	return n
}

// expose adds ports ("80", "80/udp", "8000-8002/tcp") to ExposedPorts in docker's "port/proto" form.
func expose(cfg *v1.Config, ports []string) error {
	if cfg.ExposedPorts == nil {
		cfg.ExposedPorts = map[string]struct{}{}
	}
	for _, p := range ports {
		num, proto, _ := strings.Cut(p, "/")
		if proto == "" {
			proto = "tcp"
		}
		proto = strings.ToLower(proto)
		if proto != "tcp" && proto != "udp" && proto != "sctp" {
			return fmt.Errorf("invalid protocol %q in port %q", proto, p)
		}
		lo, hi, isRange := strings.Cut(num, "-")
		if !isRange {
			hi = lo
		}
		a, err1 := strconv.ParseUint(lo, 10, 16)
		b, err2 := strconv.ParseUint(hi, 10, 16)
		if err1 != nil || err2 != nil || a == 0 || b < a {
			return fmt.Errorf("invalid port %q", p)
		}
		for n := a; n <= b; n++ {
			cfg.ExposedPorts[fmt.Sprintf("%d/%s", n, proto)] = struct{}{}
		}
	}
	return nil
}

// sortedKeys is used where map order would make output unstable.
func sortedKeys[M ~map[string]V, V any](m M) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
