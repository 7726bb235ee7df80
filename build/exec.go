package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"

	"github.com/kiln-build/kiln/cache/layer"
	"github.com/kiln-build/kiln/runtime"
)

// execOp runs a command in a container over the parent filesystem.
type execOp struct {
	args    []string
	env     []string
	user    string
	workdir string
	network string
	mounts  []runMount
	box     RunDefaults // the build's --add-host, --ulimit and --shm-size (Network is resolved into network)
}

// RunDefaults are `kiln build`'s settings for every RUN step's container.
type RunDefaults struct {
	Network    string              // --network: default, none or host; a step's RUN --network overrides it
	ExtraHosts []runtime.HostEntry // --add-host: extra /etc/hosts lines
	Ulimits    []runtime.Ulimit    // --ulimit
	ShmSize    int64               // --shm-size in bytes; 0 = 64 MiB
}

// run plans a RUN step. Its key covers the command, the environment (ENV and the build args
// in scope, BuildKit's rule), user, workdir and network mode.
func (sb *stageBuilder) run(ctx context.Context, c *instructions.RunCommand) error {
	cfg := &sb.ps.Config.Config
	args := sb.runArgs(c)
	env := append(append([]string(nil), sb.ps.Args...), cfg.Env...)
	op := &execOp{args: args, env: env, user: cfg.User, workdir: sb.cwd(),
		network: string(instructions.GetNetwork(c)), box: sb.p.opts.Run}
	if d := sb.p.opts.Run.Network; op.network == instructions.NetworkDefault && d != "" {
		op.network = d // BuildKit: RUN --network=default (or none given) takes the build's --network
	}
	mounts, deps, err := sb.planMounts(ctx, c)
	if err != nil {
		return err
	}
	op.mounts = mounts
	for _, m := range mounts {
		if m.typ == instructions.MountTypeSSH && !slices.ContainsFunc(op.env, func(e string) bool { return strings.HasPrefix(e, "SSH_AUTH_SOCK=") }) {
			op.env = append(op.env, "SSH_AUTH_SOCK="+m.target) // BuildKit: the first ssh socket
		}
	}
	v := sb.p.add(ctx, sb.vertex(op, deps...))
	sb.ps.Tip = v
	sb.step(v)
	return nil
}

func (op *execOp) cacheKey(_ context.Context, deps []string) opKey {
	in := []KeyInput{{Name: "args", Value: strings.Join(op.args, "\x00")}, {Name: "user", Value: op.user},
		{Name: "workdir", Value: op.workdir}, {Name: "network", Value: op.network}}
	for _, e := range op.env {
		k, v, _ := strings.Cut(e, "=")
		in = append(in, KeyInput{Name: "env:" + k, Value: v})
	}
	for _, m := range op.mounts {
		name := "mount:" + m.target
		if m.target == "" {
			name = "secret-env:" + m.secretEnv // a secret exposed only as a variable
		}
		in = append(in, KeyInput{Name: name, Value: m.keyValue(deps)})
	}
	return opKey{kind: ExecOp, inputs: append(in, op.box.keyInputs()...)}
}

func (op *execOp) check(opts *SolveOptions) error {
	if opts.Runner == nil {
		return errors.New("RUN steps need a container runtime, and none is configured")
	}
	return nil
}

// keyInputs follow BuildKit's exec cache map: extra hosts by name only (an address may
// change between machines), ulimits and the /dev/shm tmpfs size in full. Nothing is added
// when they are unset, so the keys of builds without them stay as they were.
func (d RunDefaults) keyInputs() []KeyInput {
	var in []KeyInput
	if len(d.ExtraHosts) > 0 {
		var names []string
		for _, h := range d.ExtraHosts {
			names = append(names, h.Name)
		}
		in = append(in, KeyInput{Name: "extra-hosts", Value: strings.Join(names, ",")})
	}
	if len(d.Ulimits) > 0 {
		var ls []string
		for _, u := range d.Ulimits {
			ls = append(ls, fmt.Sprintf("%s=%d:%d", u.Name, u.Soft, u.Hard))
		}
		in = append(in, KeyInput{Name: "ulimits", Value: strings.Join(ls, ",")})
	}
	if d.ShmSize > 0 {
		in = append(in, KeyInput{Name: "shm-size", Value: strconv.FormatInt(d.ShmSize, 10)})
	}
	return in
}

// runArgs builds a RUN's argv. With heredocs in shell form the shell itself reads the heredoc
// syntax, except when the heredoc is the whole command: then its content is the script.
func (sb *stageBuilder) runArgs(c *instructions.RunCommand) []string {
	if len(c.Files) == 0 || !c.PrependShell {
		return cmdline(sb.ps.shell, c.ShellDependantCmdLine)
	}
	shellArgs := append([]string(nil), sb.ps.shell...)
	if len(c.Files) == 1 && len(c.CmdLine) == 1 && strings.HasPrefix(c.CmdLine[0], "<<") {
		return append(shellArgs, heredocData(c.Files[0]))
	}
	var script strings.Builder
	script.WriteString(strings.Join(c.CmdLine, " ") + "\n")
	for _, f := range c.Files {
		script.WriteString(f.Data)
		if !strings.HasSuffix(f.Data, "\n") {
			script.WriteString("\n")
		}
		script.WriteString(f.Name + "\n")
	}
	return append(shellArgs, script.String())
}

func heredocData(f instructions.ShellInlineFile) string {
	if f.Chomp {
		return parser.ChompHeredocContent(f.Data)
	}
	return f.Data
}

// Runner executes RUN steps in containers (RuntimeRunner adapts the runtime package). When
// Run returns, Upper must hold only what the command changed: no mount points it created.
type Runner interface {
	Run(ctx context.Context, req RunRequest) error
}

// RunRequest is one RUN step: a command over a stack of read-only layers and a fresh upper dir.
type RunRequest struct {
	ID      string   // unique per step execution
	Lower   []string // snapshot dirs, bottom layer first
	Upper   string   // the overlay upper dir that becomes the step's layer
	Work    string   // the overlay work dir, on the same filesystem as Upper
	Rootfs  string   // with a TreeRunner: the materialized tree to run in place (Lower, Upper, Work unset)
	Args    []string
	Env     []string
	User    string
	Cwd     string
	Network string // "default", "none" or "host"
	Mounts  []RunMount
	Output  io.Writer

	SecretEnv  []string // KEY=value of RUN --mount=type=secret,env=KEY: never on disk, never in the key
	ExtraHosts []runtime.HostEntry
	Ulimits    []runtime.Ulimit
	ShmSize    int64
}

// RunMount is a RUN --mount, prepared: a host path bound at Target, or a tmpfs.
type RunMount struct {
	Source   string // host file or directory; "" for a tmpfs or a secret
	Target   string // absolute path in the container
	ReadOnly bool
	Tmpfs    bool
	Options  []string // tmpfs options such as size=64m
	Secret   *Secret  // a read-only file whose content must never reach the disk
}

// ExitError reports a RUN command that exited with a non-zero code.
type ExitError struct {
	Code   int
	Reason string // the runtime's words when it could not execute the command (127, 126)
}

func (e *ExitError) Error() string {
	why := ""
	if e.Reason != "" {
		why = " (" + e.Reason + ")"
	}
	switch e.Code {
	case 127: // the runtime's "not found", as docker maps it
		return "exit code 127: the command was not found" + why + "; check its path and the image's PATH"
	case 126:
		return "exit code 126: the command cannot be executed" + why + "; check that it is an executable file for this platform"
	}
	return fmt.Sprintf("exit code %d", e.Code)
}

// exec runs a RUN step over snapshots of its parent layers and packs the upper dir; with a
// TreeRunner, in place in a materialized tree of them (execInTree).
func (op *execOp) exec(ctx context.Context, e *env, in inputs) (*vresult, error) {
	if tr, ok := e.opts.Runner.(TreeRunner); ok && tr.InTree() {
		pm, out, err := op.prepare(ctx, e, in)
		if err != nil {
			return nil, err
		}
		defer pm.release()
		defer out.close()
		return op.execInTree(ctx, e, in, out, op.request(e, pm, out))
	}
	st := e.opts.Store
	var lower []string
	for _, l := range in.parent.layers {
		dir, err := st.Snapshot(ctx, l.diffID, l.open)
		if err != nil {
			return nil, fmt.Errorf("prepare layer %s: %w", l.diffID, err)
		}
		lower = append(lower, dir)
	}
	tmp, err := st.TempDir("run-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	upper, work := filepath.Join(tmp, "upper"), filepath.Join(tmp, "work")
	for _, d := range []string{upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, err
		}
	}
	pm, out, err := op.prepare(ctx, e, in)
	if err != nil {
		return nil, err
	}
	defer pm.release()
	defer out.close()
	req := op.request(e, pm, out)
	req.Lower, req.Upper, req.Work = lower, upper, work
	if err := e.opts.Runner.Run(ctx, req); err != nil {
		return nil, fmt.Errorf("%s: %w%s", strings.Join(op.args, " "), err, out.tail())
	}
	if err := e.keepCacheTargets(ctx, op, in.parent.layers, upper); err != nil {
		return nil, err
	}
	p, err := e.pack(ctx, func(w *layer.Writer) error { return layer.Diff(ctx, upper, w) })
	if err != nil {
		return nil, err
	}
	if !p.Empty {
		if _, err := st.CommitSnapshot(p.DiffID, upper); err != nil {
			return nil, err
		}
	}
	return e.layerResult(in.parent, p), nil
}

// prepare readies the step's mounts and its log; the caller releases and closes them.
func (op *execOp) prepare(ctx context.Context, e *env, in inputs) (*preparedMounts, *logWriter, error) {
	pm, err := e.prepareMounts(ctx, op, in.deps)
	if err != nil {
		return nil, nil, err
	}
	out := &logWriter{e: e, redact: pm.secrets}
	if err := out.openLog(e.opts.LogDir, e.v.Key); err != nil {
		pm.release()
		return nil, nil, err
	}
	return pm, out, nil
}

// request is the step's RunRequest without its filesystem.
func (op *execOp) request(e *env, pm *preparedMounts, out *logWriter) RunRequest {
	return RunRequest{ID: "kiln-build-" + strings.TrimPrefix(e.v.Key, "sha256:")[:12] + "-" + strconv.Itoa(os.Getpid()),
		Args: op.args, Env: op.env, User: op.user, Cwd: op.workdir, Network: op.network, Mounts: pm.mounts, Output: out,
		SecretEnv: pm.env, ExtraHosts: op.box.ExtraHosts, Ulimits: op.box.Ulimits, ShmSize: op.box.ShmSize}
}
