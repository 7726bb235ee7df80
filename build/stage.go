package build

import (
	"context"
	"errors"
	"fmt"
	goruntime "runtime"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// defaultPathEnv is what BuildKit puts in the config of a FROM scratch image.
const defaultPathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// stageBuilder carries the state of one stage while its instructions are planned.
type stageBuilder struct {
	p      *planner
	st     *Stage
	ps     *PlannedStage
	lex    *shell.Lex
	cmdSet bool // CMD was set in this stage, so a later ENTRYPOINT keeps it
	instr  Instruction

	// Step numbers as BuildKit counts them: FROM an image, then each ADD, COPY, RUN and
	// WORKDIR (ONBUILD triggers included); other instructions show no step.
	index, total int
	fromImage    bool     // the stage is FROM an image, its step 1
	fromV        *Vertex  // the FROM image's vertex, when this stage is the first to number it
	onbuild      bool     // the current instruction is a base image's trigger
	argNames     []string // ARGs declared in the stage, in order, for RUN's history

	// Where CMD, ENTRYPOINT and HEALTHCHECK were last set in the stage, for the check that
	// flags the ones a later one overrides.
	cmdAt, entrypointAt, healthcheckAt []parserRange
}

func (sb *stageBuilder) plan(ctx context.Context) (*PlannedStage, error) {
	sb.ps = &PlannedStage{Index: sb.st.Index, Name: sb.st.Name, shell: []string{"/bin/sh", "-c"}}
	if _, ok := sb.p.opts.named[strings.ToLower(sb.st.Name)]; ok && sb.st.Name != "" {
		return sb.planNamed(ctx)
	}
	triggers, err := sb.from(ctx)
	if err != nil {
		return nil, err
	}
	sb.total = countSteps(triggers) + countSteps(sb.st.Instructions)
	if sb.fromImage {
		sb.total++
		prefix := sb.stepPrefix() // step 1, even when an earlier stage's FROM named the vertex
		if v := sb.fromV; v != nil {
			v.Name = prefix + v.Name
		}
	}
	for i, in := range append(triggers, sb.st.Instructions...) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		sb.instr, sb.onbuild = in, i < len(triggers)
		if err := sb.dispatch(ctx, in); err != nil {
			return nil, errAt(sb.p.f.Name, in.Line, strings.ToUpper(in.Command.Name()), err)
		}
	}
	return sb.ps, nil
}

// env is what variables expand against: build args in scope, overridden by ENV.
func (sb *stageBuilder) env() kvList {
	out := append(kvList(nil), sb.ps.Args...)
	return append(out, sb.ps.Config.Config.Env...)
}

// expand runs BuildKit's word expansion over an instruction, warning about undefined
// variables; heredoc contents are expanded raw (quotes and escapes kept), as BuildKit does.
func (sb *stageBuilder) expand(cmd instructions.Command) error {
	env := sb.env()
	expander := func(lex *shell.Lex) instructions.SingleWordExpander {
		return func(word string) (string, error) {
			out, unmatched, err := lex.ProcessWord(word, env)
			sb.checkUndefined(unmatched, env)
			return out, err
		}
	}
	if ex, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
		if err := ex.Expand(expander(sb.lex)); err != nil {
			return err
		}
	}
	if ex, ok := cmd.(instructions.SupportsSingleWordExpansionRaw); ok {
		raw := shell.NewLex(sb.p.f.EscapeToken)
		raw.RawQuotes, raw.RawEscapes = true, true
		return ex.ExpandRaw(expander(raw))
	}
	return nil
}

// from sets up the stage's base: scratch, an earlier stage or an image. It returns the
// base's ONBUILD triggers, which run before the stage's own instructions.
func (sb *stageBuilder) from(ctx context.Context) ([]Instruction, error) {
	p, st := sb.p, sb.st
	fail := func(err error) ([]Instruction, error) { return nil, errAt(p.f.Name, st.Line, "FROM", err) }
	base, _, err := sb.lex.ProcessWord(st.BaseName, p.metaArgs)
	if err != nil {
		return fail(err)
	}
	if base == "" {
		return fail(fmt.Errorf("base name (%s) should not be blank", st.BaseName))
	}
	if err := sb.checkPlatform(); err != nil {
		return fail(err)
	}
	var onbuild []string
	switch idx, isStage := p.stageByName(base); {
	case isStage && idx >= st.Index && !isNumeric(base):
		return fail(fmt.Errorf("stage %q must be defined before it is used", base))
	case isStage && !isNumeric(base):
		bs, err := p.stage(ctx, idx)
		if err != nil {
			return nil, err
		}
		sb.ps.Config = *bs.Config.DeepCopy()
		sb.ps.Tip, sb.ps.shell, sb.ps.Base = bs.Tip, bs.shell, bs
		sb.ps.workdirSet, sb.ps.declared = bs.workdirSet, slices.Clone(bs.declared)
		onbuild = bs.Config.Config.OnBuild
	case strings.EqualFold(base, "scratch"):
		sb.ps.Config = scratchConfig()
	case sb.p.namedDir(base) != nil:
		if err := sb.fromDir(ctx, base); err != nil {
			return fail(err)
		}
	default:
		if onbuild, err = sb.fromImageRef(ctx, base); err != nil {
			return fail(err)
		}
	}
	sb.ps.Config.Config.OnBuild = nil
	sb.ps.Config.RootFS = v1.RootFS{}
	return sb.parseTriggers(onbuild)
}

// fromImageRef makes an image the stage's base and returns its ONBUILD triggers.
func (sb *stageBuilder) fromImageRef(ctx context.Context, base string) ([]string, error) {
	img, v, err := sb.source(ctx, base)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("read config of %s: %w", base, err)
	}
	sb.ps.Config = *cf.DeepCopy()
	sb.ps.Tip, sb.fromImage = v, true
	if !strings.HasPrefix(v.Name, "[") {
		sb.fromV = v // not numbered by an earlier stage: numbered once the step count is known
	}
	if len(cf.Config.Shell) > 0 {
		sb.ps.shell = cf.Config.Shell
	}
	return cf.Config.OnBuild, nil
}

func scratchConfig() v1.ConfigFile {
	return v1.ConfigFile{OS: "linux", Architecture: goruntime.GOARCH, Config: v1.Config{Env: []string{defaultPathEnv}}}
}

func isNumeric(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// checkPlatform accepts --platform only when it names the host platform.
func (sb *stageBuilder) checkPlatform() error {
	if sb.st.Platform == "" {
		return nil
	}
	plat, _, err := sb.lex.ProcessWord(sb.st.Platform, sb.p.metaArgs)
	if err != nil {
		return err
	}
	return CheckPlatform(plat)
}

// HostPlatform is the one platform kiln builds and runs: linux and the host's architecture.
var HostPlatform = "linux/" + goruntime.GOARCH

// CheckPlatform accepts a --platform value only when it names the host platform ("" and
// "local" do too), with the error that says so otherwise.
func CheckPlatform(plat string) error {
	if plat == "" || plat == "local" {
		return nil
	}
	parts := strings.Split(strings.ToLower(plat), "/")
	if len(parts) >= 2 {
		arch := map[string]string{"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64"}[parts[1]]
		if arch == "" {
			arch = parts[1]
		}
		variantOK := len(parts) == 2 || len(parts) == 3 && arch == "arm64" && parts[2] == "v8"
		if parts[0] == "linux" && arch == goruntime.GOARCH && variantOK {
			return nil
		}
	}
	return fmt.Errorf("--platform=%s: kiln builds for the host platform (%s) only; multi-platform builds are not supported yet", plat, HostPlatform)
}

// source resolves an image and adds its source vertex.
func (sb *stageBuilder) source(ctx context.Context, ref string) (v1.Image, *Vertex, error) {
	img, ref, err := sb.resolve(ctx, ref)
	if err != nil {
		return nil, nil, err
	}
	dig, err := img.Digest()
	if err != nil {
		return nil, nil, fmt.Errorf("image %s: %w", ref, err)
	}
	v := sb.p.add(ctx, &Vertex{Name: "FROM " + ref, Instr: "FROM", Stage: sb.st.Index, Line: sb.st.Line,
		op: &sourceOp{ref: ref, digest: dig.String(), image: img}})
	return img, v, nil
}

// resolve finds an image by reference, or by a --build-context name first (BuildKit: a named
// context replaces the image of that name); it returns the name to show.
func (sb *stageBuilder) resolve(ctx context.Context, ref string) (v1.Image, string, error) {
	if nc, ok := sb.p.opts.named[strings.ToLower(ref)]; ok {
		switch {
		case nc.image != nil:
			return nc.image, ref + " (" + nc.value + ")", nil
		case nc.dir != nil:
			return nil, "", fmt.Errorf("%s is the directory %s (--build-context): use it with FROM, COPY --from or RUN --mount=type=bind,from=", ref, nc.value)
		}
		ref = nc.ref
	}
	if sb.p.opts.Resolver == nil {
		return nil, "", fmt.Errorf("image %q: %w", ref, errNoResolver)
	}
	img, err := sb.p.opts.Resolver.Resolve(ctx, ref)
	return img, ref, err
}

// parseTriggers turns a base image's ONBUILD expressions into instructions.
func (sb *stageBuilder) parseTriggers(exprs []string) ([]Instruction, error) {
	var out []Instruction
	for _, expr := range exprs {
		res, err := parser.Parse(strings.NewReader(expr))
		if err != nil {
			return nil, errAt(sb.p.f.Name, sb.st.Line, "ONBUILD", fmt.Errorf("trigger %q: %w", expr, err))
		}
		for _, node := range res.AST.Children {
			switch strings.ToUpper(node.Value) {
			case "ONBUILD", "FROM", "MAINTAINER":
				return nil, errAt(sb.p.f.Name, sb.st.Line, "ONBUILD", fmt.Errorf("%s is not allowed as an ONBUILD trigger", node.Value))
			}
			cmd, err := instructions.ParseCommand(node)
			if err != nil {
				return nil, errAt(sb.p.f.Name, sb.st.Line, "ONBUILD", fmt.Errorf("trigger %q: %w", expr, cleanParseErr(err)))
			}
			out = append(out, Instruction{Line: sb.st.Line, Source: node.Original, Command: cmd})
		}
	}
	return out, nil
}

var errUnsupported = errors.New("not supported yet")
