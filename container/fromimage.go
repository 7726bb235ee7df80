package container

import (
	"context"
	"errors"
	"fmt"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/runtime"
)

// ImageOverrides are what a `kiln run` command line sets over the image's own config.
type ImageOverrides struct {
	Entrypoint *string  // --entrypoint: replaces ENTRYPOINT and drops CMD; "" leaves no entrypoint
	Args       []string // the command after the image name; replaces CMD
}

// FromImage completes spec from img by docker's rules: the command line from ENTRYPOINT and
// CMD unless overridden, the image's env under the flags', USER and WORKDIR where the flags
// set none, and the image's layers unpacked (once, shared) as the lower dirs, bottom first.
// It returns the image's config for what else the caller keeps (STOPSIGNAL), with ENTRYPOINT
// and CMD as the container runs them (docker's container Config, which commit writes).
func FromImage(ctx context.Context, s *cache.Store, img v1.Image, spec *runtime.Spec, o ImageOverrides) (v1.Config, error) {
	icfg, err := img.ConfigFile()
	if err != nil {
		return v1.Config{}, fmt.Errorf("read image config: %w", err)
	}
	cfg := icfg.Config
	if cfg.Entrypoint, cfg.Cmd, err = command(cfg, o); err != nil {
		return cfg, err
	}
	spec.Args = append(append([]string(nil), cfg.Entrypoint...), cfg.Cmd...)
	if spec.Lower, err = snapshots(ctx, s, img); err != nil {
		return cfg, err
	}
	spec.Env = MergeEnv(cfg.Env, spec.Env)
	if spec.User == "" {
		spec.User = cfg.User
	}
	if spec.Cwd == "" {
		spec.Cwd = cfg.WorkingDir
	}
	return cfg, nil
}

// command is docker's rule: the container runs ENTRYPOINT (or --entrypoint) followed by the
// command line given, or by the image's CMD when none is given; --entrypoint also drops the
// image's CMD. Both empty is an error: there is nothing to run.
func command(cfg v1.Config, o ImageOverrides) (entrypoint, cmd []string, err error) {
	entrypoint, cmd = cfg.Entrypoint, cfg.Cmd
	if o.Entrypoint != nil {
		entrypoint, cmd = nil, nil
		if *o.Entrypoint != "" {
			entrypoint = []string{*o.Entrypoint}
		}
	}
	if len(o.Args) > 0 {
		cmd = o.Args
	}
	if len(entrypoint)+len(cmd) == 0 {
		return nil, nil, errors.New("no command specified: the image has no ENTRYPOINT or CMD; give one after the image name")
	}
	return entrypoint, cmd, nil
}

// snapshots unpacks every layer of img (once per store, shared) and lists them bottom first.
func snapshots(ctx context.Context, s *cache.Store, img v1.Image) ([]string, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	var dirs []string
	for _, l := range layers {
		diffID, err := l.DiffID()
		if err != nil {
			return nil, err
		}
		dir, err := s.Snapshot(ctx, diffID, l.Compressed)
		if err != nil {
			return nil, err
		}
		dirs = append(dirs, dir)
	}
	return dirs, nil
}

// MergeEnv overlays later KEY=VALUE entries on earlier ones, keeping first-seen order.
func MergeEnv(lists ...[]string) []string {
	idx := map[string]int{}
	var out []string
	for _, l := range lists {
		for _, e := range l {
			k, _, _ := strings.Cut(e, "=")
			if i, ok := idx[k]; ok {
				out[i] = e
				continue
			}
			idx[k] = len(out)
			out = append(out, e)
		}
	}
	return out
}
