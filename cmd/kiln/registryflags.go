package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	units "github.com/docker/go-units"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/registry"
)

// registryFlags are the global flags that shape every registry access.
type registryFlags struct {
	insecure []string // host[:port] allowed over plain HTTP or unverified TLS
	mirrors  []string // MIRROR (for docker.io) or REGISTRY=MIRROR
}

func (r *registryFlags) register(c *cobra.Command) {
	f := c.PersistentFlags()
	f.StringArrayVar(&r.insecure, "insecure-registry", nil, "allow plain HTTP or unverified TLS for this registry host[:port] (localhost is always allowed)")
	f.StringArrayVar(&r.mirrors, "registry-mirror", nil, "pull through a mirror: MIRROR (for docker.io) or REGISTRY=MIRROR; also in registries.toml")
}

// options turns the flags into registry options.
func (r *registryFlags) options() ([]registry.Option, error) {
	opts := []registry.Option{}
	if len(r.insecure) > 0 {
		opts = append(opts, registry.WithInsecureRegistry(r.insecure...))
	}
	for _, m := range r.mirrors {
		reg, mirror, ok := strings.Cut(m, "=")
		if !ok {
			reg, mirror = "docker.io", m
		}
		if reg == "" || mirror == "" {
			return nil, usageError{fmt.Errorf("invalid --registry-mirror %q: use MIRROR or REGISTRY=MIRROR", m)}
		}
		opts = append(opts, registry.WithMirrors(reg, mirror))
	}
	return opts, nil
}

// hintResolver adds what to do when a base image can be neither found nor pulled.
type hintResolver struct{ r *registry.Resolver }

func (h hintResolver) Resolve(ctx context.Context, ref string) (v1.Image, error) {
	img, err := h.r.Resolve(ctx, ref)
	if err != nil && ctx.Err() == nil {
		return nil, fmt.Errorf("%w (without registry access: `kiln load -i ARCHIVE`, or --registry-mirror)", err)
	}
	return img, err
}

// resolver serves base images from the store, pulling them when missing (per policy).
func (g *globalOptions) resolver(s *cache.Store, policy registry.PullPolicy, progress io.Writer, extra ...registry.Option) (hintResolver, error) {
	opts, err := g.registry.options()
	if err != nil {
		return hintResolver{}, err
	}
	opts = append(append(opts, registry.WithPullPolicy(policy)), extra...)
	if progress != nil {
		opts = append(opts, registry.WithProgress(blobProgress(progress, "Pulling")))
	}
	return hintResolver{registry.NewResolver(s, opts...)}, nil
}

// blobProgress reports blob transfers: bars on a terminal, one line per event otherwise.
func blobProgress(w io.Writer, verb string) registry.ProgressFunc {
	if isTerminal(w) {
		return newBlobBars(w, verb)
	}
	return blobLines(w, verb)
}

// blobLines prints one line per blob event, docker pull style, safe for concurrent calls.
func blobLines(w io.Writer, verb string) registry.ProgressFunc {
	var mu sync.Mutex
	return func(e registry.Event) {
		var msg string
		switch e.Kind {
		case registry.EventStart:
			msg = verb + " " + units.HumanSize(float64(e.Total))
		case registry.EventDone:
			msg = "Done"
		case registry.EventExists:
			msg = "Already exists"
		case registry.EventRetry:
			msg = "Retrying"
		default:
			return
		}
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, "%s: %s\n", shortDigest(e.Digest.Hex), msg)
	}
}

func shortDigest(hex string) string {
	if len(hex) > 12 {
		return hex[:12]
	}
	return hex
}
