package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/kiln-build/kiln/build"
	"github.com/kiln-build/kiln/runtime"
)

// buildRunFlags are docker's `build` flags for RUN steps' containers and their sources.
type buildRunFlags struct {
	network  string
	addHosts []string
	ulimits  []string
	shmSize  string
	ssh      []string
	annotate []string
	contexts []string
}

func (b *buildRunFlags) bind(f *pflag.FlagSet) {
	f.StringVar(&b.network, "network", "default", "network of RUN steps that name none: default (the host's; rootless, a user-mode network of their own), host or none")
	f.StringArrayVar(&b.addHosts, "add-host", nil, "add NAME:IP to /etc/hosts of every RUN step (repeatable)")
	f.StringArrayVar(&b.ulimits, "ulimit", nil, "resource limit NAME=SOFT[:HARD] of every RUN step, e.g. nofile=1024:2048 (repeatable)")
	f.StringVar(&b.shmSize, "shm-size", "", "size of /dev/shm in RUN steps, e.g. 128m (default 64m)")
	f.StringArrayVar(&b.annotate, "annotation", nil, "add an annotation KEY=VALUE (or manifest:KEY=VALUE) to the image manifest (repeatable)")
	f.StringArrayVar(&b.contexts, "build-context", nil, "named context NAME=DIR|GIT-URL|docker-image://REF|oci-layout://DIR[:TAG] for FROM NAME and COPY --from=NAME (repeatable)")
	f.StringArrayVar(&b.ssh, "ssh", nil, "SSH agent or keys for RUN --mount=type=ssh: default (= $SSH_AUTH_SOCK) or ID=SOCKET|KEYFILE[,KEYFILE] (repeatable)")
}

// apply puts the flags into the build options, failing on malformed input.
func (b *buildRunFlags) apply(o *build.Options) error {
	switch b.network {
	case "default", "host", "none":
		o.Run.Network = b.network
	default:
		return fmt.Errorf("--network %q: a build uses default, host or none", b.network)
	}
	for _, s := range b.addHosts {
		h, err := runtime.ParseAddHost(s)
		if err != nil {
			return err
		}
		o.Run.ExtraHosts = append(o.Run.ExtraHosts, h)
	}
	for _, s := range b.ulimits {
		u, err := runtime.ParseUlimit(s)
		if err != nil {
			return err
		}
		o.Run.Ulimits = append(o.Run.Ulimits, u)
	}
	if b.shmSize != "" {
		n, err := runtime.ParseSize("--shm-size", b.shmSize)
		if err != nil {
			return err
		}
		o.Run.ShmSize = n
	}
	var err error
	if o.Annotations, err = build.ParseAnnotations(b.annotate); err != nil {
		return err
	}
	if o.BuildContexts, err = build.ParseBuildContexts(b.contexts); err != nil {
		return err
	}
	for _, s := range b.ssh {
		id, paths, _ := strings.Cut(s, "=")
		if id == "" {
			return fmt.Errorf("--ssh %q: use default or ID=PATH[,PATH]", s)
		}
		src := build.SSHSource{ID: id}
		if paths != "" {
			src.Paths = strings.Split(paths, ",")
		} else if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
			src.Paths = []string{sock}
		} else {
			return fmt.Errorf("--ssh %s: SSH_AUTH_SOCK is not set: start an agent (eval $(ssh-agent); ssh-add) or give %s=KEYFILE", id, id)
		}
		o.SSH = append(o.SSH, src)
	}
	return nil
}
