package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	units "github.com/docker/go-units"
)

// mountFlag is one -v, --mount or --tmpfs flag, before it becomes a runtime mount.
type mountFlag struct {
	tmpfs    bool
	source   string // absolute host path for binds
	target   string
	readOnly bool
	options  []string // tmpfs options such as size=64m
	volume   bool     // a named volume (source is its name) or, with no source, an anonymous one
	noCopy   bool     // volume-nocopy: an empty volume is not filled from the image
}

// parseVolume reads docker's -v HOST:CONTAINER[:ro|rw], -v NAME:CONTAINER[:ro|rw] (a named
// volume: a source with no leading / or ., docker's rule) and -v CONTAINER (an anonymous volume).
func parseVolume(v string) (mountFlag, error) {
	parts := strings.Split(v, ":")
	if len(parts) == 1 && strings.HasPrefix(v, "/") {
		return mountFlag{volume: true, target: v}.finish(v)
	}
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return mountFlag{}, fmt.Errorf("invalid volume %q: use HOST-PATH:CONTAINER-PATH[:ro], VOLUME-NAME:CONTAINER-PATH[:ro] or CONTAINER-PATH", v)
	}
	m := mountFlag{source: parts[0], target: parts[1]}
	if len(parts) == 3 {
		for _, o := range strings.Split(parts[2], ",") {
			switch o {
			case "ro":
				m.readOnly = true
			case "rw", "z", "Z":
			default:
				return mountFlag{}, fmt.Errorf("invalid volume %q: unknown option %q (use ro or rw)", v, o)
			}
		}
	}
	m.volume = !strings.HasPrefix(m.source, "/") && !strings.HasPrefix(m.source, ".")
	return m.finish(v)
}

// parseMount reads docker's --mount type=bind|tmpfs,source=...,target=...,readonly.
func parseMount(v string) (mountFlag, error) {
	m, typ := mountFlag{}, "volume"
	for _, kv := range strings.Split(v, ",") {
		k, val, hasVal := strings.Cut(kv, "=")
		switch strings.ToLower(k) {
		case "type":
			typ = val
		case "source", "src":
			m.source = val
		case "target", "destination", "dst":
			m.target = val
		case "readonly", "ro":
			ro, err := strconv.ParseBool(val)
			if !hasVal {
				ro, err = true, nil
			}
			if err != nil {
				return mountFlag{}, fmt.Errorf("invalid --mount %q: readonly=%q is not a boolean", v, val)
			}
			m.readOnly = ro
		case "tmpfs-size":
			m.options = append(m.options, "size="+val)
		case "tmpfs-mode":
			m.options = append(m.options, "mode="+val)
		case "volume-nocopy":
			m.noCopy = true
		case "bind-propagation", "consistency":
		default:
			return mountFlag{}, fmt.Errorf("invalid --mount %q: unknown key %q", v, k)
		}
	}
	switch typ {
	case "bind":
		if m.source == "" {
			return mountFlag{}, fmt.Errorf("invalid --mount %q: a bind mount needs source=", v)
		}
	case "tmpfs":
		if m.source != "" {
			return mountFlag{}, fmt.Errorf("invalid --mount %q: a tmpfs mount takes no source", v)
		}
		m.tmpfs = true
	case "volume":
		m.volume = true
	default:
		return mountFlag{}, fmt.Errorf("invalid --mount %q: type %q is not supported (use bind, volume or tmpfs)", v, typ)
	}
	if m.noCopy && !m.volume {
		return mountFlag{}, fmt.Errorf("invalid --mount %q: volume-nocopy is for type=volume", v)
	}
	return m.finish(v)
}

// parseTmpfs reads docker's --tmpfs PATH[:OPTIONS].
func parseTmpfs(v string) (mountFlag, error) {
	target, opts, _ := strings.Cut(v, ":")
	m := mountFlag{tmpfs: true, target: target}
	if opts != "" {
		m.options = strings.Split(opts, ",")
	}
	return m.finish(v)
}

// finish checks the target and makes a bind source absolute.
func (m mountFlag) finish(flag string) (mountFlag, error) {
	if !strings.HasPrefix(m.target, "/") {
		return mountFlag{}, fmt.Errorf("invalid mount %q: the container path %q must be absolute", flag, m.target)
	}
	m.target = filepath.Clean(m.target)
	if m.tmpfs || m.volume {
		return m, nil
	}
	abs, err := filepath.Abs(m.source)
	if err != nil {
		return mountFlag{}, err
	}
	if _, err := os.Stat(abs); err != nil {
		return mountFlag{}, fmt.Errorf("bind source %s does not exist: create it first (kiln does not create host directories)", abs)
	}
	m.source = abs
	return m, nil
}

// parseMemory reads sizes like 64m or 1g (binary units, as docker).
func parseMemory(flag, v string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	n, err := units.RAMInBytes(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid %s %q: use a size such as 64m or 1g", flag, v)
	}
	if n > 0 && n < 6<<20 {
		return 0, fmt.Errorf("invalid %s %q: the minimum is 6m", flag, v)
	}
	return n, nil
}

// readEnvFiles reads docker-style env files: KEY=VALUE lines, # comments, and bare KEY
// taking the value from kiln's own environment.
func readEnvFiles(paths []string) ([]string, error) {
	var env []string
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, fmt.Errorf("--env-file: %w", err)
		}
		sc := bufio.NewScanner(f)
		line := 0
		for sc.Scan() {
			line++
			text := strings.TrimSpace(sc.Text())
			if text == "" || strings.HasPrefix(text, "#") {
				continue
			}
			e, err := envEntry(text)
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("--env-file %s:%d: %w", p, line, err)
			}
			if e != "" {
				env = append(env, e)
			}
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("--env-file %s: %w", p, err)
		}
	}
	return env, nil
}

// envEntry normalizes one -e value: KEY=VALUE stays, KEY alone is looked up in the host
// environment and dropped when unset (docker's rule).
func envEntry(v string) (string, error) {
	k, _, ok := strings.Cut(v, "=")
	if k == "" || strings.ContainsAny(k, " \t") {
		return "", fmt.Errorf("invalid environment variable %q", v)
	}
	if ok {
		return v, nil
	}
	if val, set := os.LookupEnv(k); set {
		return k + "=" + val, nil
	}
	return "", nil
}
