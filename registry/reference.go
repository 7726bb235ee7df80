package registry

import (
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/kiln-build/kiln/cache"
)

// endpoint is one place to fetch an image from: a mirror or the origin registry.
type endpoint struct {
	ref      name.Reference
	insecure bool
	mirror   bool
}

// isLoopback reports localhost and loopback addresses, which always use plain HTTP when
// they offer no TLS, as docker does.
func isLoopback(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// insecure reports whether host may be reached over HTTP or unverified TLS.
func (o *options) isInsecure(host string) bool {
	return isLoopback(host) || slices.Contains(o.insecure, host) || o.config.insecureHost(host)
}

// reference turns a normalised name into go-containerregistry's form for host rules.
func (o *options) reference(n cache.Name) (endpoint, error) {
	insecure := o.isInsecure(n.Registry())
	var nopts []name.Option
	if insecure {
		nopts = append(nopts, name.Insecure)
	}
	ref, err := name.ParseReference(n.String(), nopts...)
	if err != nil {
		return endpoint{}, fmt.Errorf("reference %s: %w", n, err)
	}
	return endpoint{ref: ref, insecure: insecure}, nil
}

// pullEndpoints lists the configured mirrors of n in order, then n's own registry.
func (o *options) pullEndpoints(n cache.Name) ([]endpoint, error) {
	var out []endpoint
	if rc, ok := o.config.match(n.Repository()); ok {
		rest := strings.TrimPrefix(n.Repository(), rc.Location)
		for _, m := range rc.Mirrors {
			mn, err := cache.ParseName(m.Location + rest + refSuffix(n))
			if err != nil {
				return nil, fmt.Errorf("mirror %s for %s: %w", m.Location, n.Short(), err)
			}
			ep, err := o.reference(mn)
			if err != nil {
				return nil, err
			}
			ep.mirror, ep.insecure = true, ep.insecure || m.Insecure
			if m.Insecure && !isLoopback(mn.Registry()) {
				ep.ref, _ = name.ParseReference(mn.String(), name.Insecure)
			}
			out = append(out, ep)
		}
	}
	ep, err := o.reference(n)
	if err != nil {
		return nil, err
	}
	return append(out, ep), nil
}

// refSuffix is ":tag" or "@digest".
func refSuffix(n cache.Name) string {
	if d := n.Digest(); d != "" {
		return "@" + d
	}
	return ":" + n.Tag()
}
