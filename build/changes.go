package build

import (
	"fmt"
	"path"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// metaState is what config instructions read besides the config itself.
type metaState struct {
	shell  []string // the SHELL in effect, for the shell forms of CMD and ENTRYPOINT
	cmdSet bool     // CMD was set here, so a later ENTRYPOINT keeps it
}

// applyMeta applies an instruction that changes only the image config, the same for a
// Buildfile's stage and for commit's and import's --change; ok is false for any other.
func applyMeta(cf *v1.ConfigFile, m *metaState, cmd instructions.Command) (ok bool, err error) {
	cfg := &cf.Config
	switch c := cmd.(type) {
	case *instructions.EnvCommand:
		for _, kv := range c.Env {
			cfg.Env = kvList(cfg.Env).set(kv.Key, kv.Value)
		}
	case *instructions.LabelCommand:
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for _, kv := range c.Labels {
			cfg.Labels[kv.Key] = kv.Value
		}
	case *instructions.MaintainerCommand:
		cf.Author = c.Maintainer
	case *instructions.WorkdirCommand:
		cfg.WorkingDir = workdirPath(cfg.WorkingDir, c.Path)
	case *instructions.UserCommand:
		cfg.User = c.User
	case *instructions.CmdCommand:
		cfg.Cmd, m.cmdSet = cmdline(m.shell, c.ShellDependantCmdLine), true
	case *instructions.EntrypointCommand:
		cfg.Entrypoint = cmdline(m.shell, c.ShellDependantCmdLine)
		if !m.cmdSet {
			cfg.Cmd = nil // docker: an ENTRYPOINT resets a CMD inherited from the base
		}
	case *instructions.ExposeCommand:
		return true, expose(cfg, c.Ports)
	case *instructions.VolumeCommand:
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for _, v := range c.Volumes {
			if strings.TrimSpace(v) == "" {
				return true, fmt.Errorf("VOLUME specified can not be an empty string")
			}
			cfg.Volumes[v] = struct{}{}
		}
	case *instructions.StopSignalCommand:
		cfg.StopSignal = c.Signal
	case *instructions.ShellCommand:
		m.shell, cfg.Shell = c.Shell, c.Shell
	case *instructions.HealthCheckCommand:
		h := c.Health
		cfg.Healthcheck = &v1.HealthConfig{Test: h.Test, Interval: h.Interval, Timeout: h.Timeout,
			StartPeriod: h.StartPeriod, Retries: h.Retries}
	case *instructions.OnbuildCommand:
		cfg.OnBuild = append(cfg.OnBuild, c.Expression)
	default:
		return false, nil
	}
	return true, nil
}

// cmdline turns a shell-or-exec form into argv, through shell for the shell form.
func cmdline(shell []string, c instructions.ShellDependantCmdLine) []string {
	if !c.PrependShell {
		return append([]string(nil), c.CmdLine...)
	}
	return append(append([]string(nil), shell...), strings.Join(c.CmdLine, " "))
}

// workdirPath is WORKDIR p after wd, as docker sets it: an absolute path is kept as written
// ("/tmp/" stays "/tmp/"), a relative one is joined to the previous.
func workdirPath(wd, p string) string {
	if path.IsAbs(p) {
		return p
	}
	return path.Join("/", wd, p)
}

// changeCommands are the instructions docker's commit and import accept as a --change.
var changeCommands = []string{"cmd", "entrypoint", "healthcheck", "env", "expose", "label", "onbuild",
	"stopsignal", "user", "volume", "workdir"}

// ApplyChanges applies Dockerfile instructions to an image config as docker's commit and
// import do with --change: each is parsed as a Buildfile line, its variables expand against
// the config's ENV (there are no build args) and it changes the config as in a build; only
// config instructions are allowed, with docker's error for the others.
func ApplyChanges(cf *v1.ConfigFile, changes []string) error {
	if len(changes) == 0 {
		return nil
	}
	res, err := parser.Parse(strings.NewReader(strings.Join(changes, "\n")))
	if err != nil {
		return fmt.Errorf("--change: %w", cleanParseErr(err))
	}
	var cmds []instructions.Command
	for _, n := range res.AST.Children {
		if !slices.Contains(changeCommands, strings.ToLower(n.Value)) {
			return fmt.Errorf("%s is not a valid change command", n.Value)
		}
		c, err := instructions.ParseCommand(n)
		if err != nil {
			return fmt.Errorf("--change %s: %w", strings.ToUpper(n.Value), cleanParseErr(err))
		}
		cmds = append(cmds, c)
	}
	lex := shell.NewLex(res.EscapeToken)
	m := metaState{shell: []string{"/bin/sh", "-c"}}
	if len(cf.Config.Shell) > 0 {
		m.shell = cf.Config.Shell
	}
	for _, c := range cmds {
		if ex, ok := c.(instructions.SupportsSingleWordExpansion); ok {
			env := kvList(cf.Config.Env)
			err := ex.Expand(func(word string) (string, error) {
				out, _, err := lex.ProcessWord(word, env)
				return out, err
			})
			if err != nil {
				return fmt.Errorf("--change %s: %w", strings.ToUpper(c.Name()), err)
			}
		}
		if _, err := applyMeta(cf, &m, c); err != nil {
			return fmt.Errorf("--change %s: %w", strings.ToUpper(c.Name()), err)
		}
	}
	return nil
}
