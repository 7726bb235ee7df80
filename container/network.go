package container

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/kiln-build/kiln/internal/atomicfile"
	"github.com/kiln-build/kiln/runtime"
)

// networkVersion is the format of a network record, networks/<id>.json.
const networkVersion = 1

// BuiltinNetworks are docker's predefined networks, which always exist and cannot be made or removed.
var BuiltinNetworks = []string{"bridge", "host", "none"}

// networkRecord is a network's file: kiln's own versioned format.
type networkRecord struct {
	Version  int               `json:"version"`
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Subnet   netip.Prefix      `json:"subnet"`
	Gateway  netip.Addr        `json:"gateway"`
	Internal bool              `json:"internal,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	Created  time.Time         `json:"created"`
}

// Network is one user-defined network: a bridge of its own whose members find each other by name.
type Network struct {
	ID       string // 64 hex digits
	Name     string
	Subnet   netip.Prefix
	Gateway  netip.Addr
	Internal bool
	Labels   map[string]string
	Created  time.Time
}

// NetworkOptions are `kiln network create`'s flags; zero values pick docker's defaults.
type NetworkOptions struct {
	Subnet   netip.Prefix // zero = a free /24 of runtime.SubnetPool
	Gateway  netip.Addr   // zero = the subnet's first address
	Internal bool
	Labels   map[string]string
}

// Bridge is the runtime's bridge of n: kiln-<first 10 of the id>, unique per network.
func (n Network) Bridge() runtime.Bridge {
	return runtime.Bridge{Name: "kiln-" + n.ID[:10], Subnet: n.Subnet, Gateway: n.Gateway, Internal: n.Internal, Resolve: true}
}

// BuiltinNetworkID is the fixed id of a predefined network, so ls and inspect show one.
func BuiltinNetworkID(name string) string {
	h := sha256.Sum256([]byte("kiln network " + name))
	return hex.EncodeToString(h[:])
}

// NoSuchNetworkError says no network has a name or id, in docker's words.
type NoSuchNetworkError struct{ Name string }

func (e *NoSuchNetworkError) Error() string { return "network " + e.Name + " not found" }

// NetworkInUseError says containers still use a network, in docker's words.
type NetworkInUseError struct {
	Name string
	IDs  []string
}

func (e *NetworkInUseError) Error() string {
	return fmt.Sprintf("error while removing network: network %s has active endpoints (containers %s): remove them first", e.Name, strings.Join(e.IDs, ", "))
}

// CreateNetwork makes the network name, refusing a taken name, a built-in one and a subnet that
// overlaps another network's.
func (s *Store) CreateNetwork(ctx context.Context, name string, o NetworkOptions) (Network, error) {
	if !validName(name) {
		return Network{}, fmt.Errorf("invalid network name %q: use [a-zA-Z0-9][a-zA-Z0-9_.-]", name)
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return Network{}, err
	}
	defer unlock()
	all, err := s.Networks()
	if err != nil {
		return Network{}, err
	}
	if slices.Contains(BuiltinNetworks, name) || slices.ContainsFunc(all, func(n Network) bool { return n.Name == name }) {
		return Network{}, fmt.Errorf("network with name %s already exists", name)
	}
	taken := []netip.Prefix{runtime.DefaultBridge.Subnet}
	for _, n := range all {
		taken = append(taken, n.Subnet)
	}
	subnet := o.Subnet.Masked()
	switch {
	case !o.Subnet.IsValid() && o.Gateway.IsValid():
		return Network{}, errors.New("--gateway needs --subnet: every gateway must have a corresponding subnet")
	case !o.Subnet.IsValid():
		if subnet, err = runtime.PickSubnet(taken); err != nil {
			return Network{}, err
		}
	case !subnet.Addr().Is4() || subnet.Bits() > 30:
		return Network{}, fmt.Errorf("invalid --subnet %s: use an IPv4 subnet of /30 or larger", o.Subnet)
	case slices.ContainsFunc(taken, subnet.Overlaps):
		return Network{}, fmt.Errorf("invalid pool request: pool %s overlaps with another network's subnet: choose another --subnet (kiln network inspect shows theirs)", subnet)
	}
	gw := o.Gateway
	if !gw.IsValid() {
		gw = subnet.Addr().Next()
	}
	if !subnet.Contains(gw) || gw == subnet.Addr() || !subnet.Contains(gw.Next()) {
		return Network{}, fmt.Errorf("no matching subnet for gateway %s: choose a host address of %s", gw, subnet)
	}
	id, err := newNetworkID()
	if err != nil {
		return Network{}, err
	}
	rec := networkRecord{Version: networkVersion, ID: id, Name: name, Subnet: subnet, Gateway: gw, Internal: o.Internal,
		Labels: o.Labels, Created: time.Now().UTC()}
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return Network{}, err
	}
	if err := os.MkdirAll(s.networks, 0o700); err != nil {
		return Network{}, fmt.Errorf("create network %s: %w", name, err)
	}
	if err := atomicfile.Write(filepath.Join(s.networks, id+".json"), append(data, '\n'), atomicfile.Options{Perm: 0o600}); err != nil {
		return Network{}, fmt.Errorf("create network %s: %w", name, err)
	}
	return rec.network(), nil
}

func newNetworkID() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("network id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func (r networkRecord) network() Network {
	return Network{ID: r.ID, Name: r.Name, Subnet: r.Subnet, Gateway: r.Gateway, Internal: r.Internal, Labels: r.Labels, Created: r.Created}
}

// Networks lists the user-defined networks by name.
func (s *Store) Networks() ([]Network, error) {
	ents, err := os.ReadDir(s.networks)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	var out []Network
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(s.networks, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read network %s: %w", e.Name(), err)
		}
		var rec networkRecord
		if err := json.Unmarshal(data, &rec); err != nil {
			return nil, fmt.Errorf("read network record %s: %w", filepath.Join(s.networks, e.Name()), err)
		}
		if rec.Version != networkVersion {
			return nil, fmt.Errorf("network %s: format version %d, this kiln reads %d: upgrade kiln", rec.Name, rec.Version, networkVersion)
		}
		out = append(out, rec.network())
	}
	slices.SortFunc(out, func(a, b Network) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Network returns the user-defined network of that name, full id or unique id prefix, as docker
// looks networks up.
func (s *Store) Network(ref string) (Network, error) {
	all, err := s.Networks()
	if err != nil {
		return Network{}, err
	}
	var byPrefix []Network
	for _, n := range all {
		if n.Name == ref || n.ID == ref {
			return n, nil
		}
		if len(ref) > 0 && strings.HasPrefix(n.ID, ref) {
			byPrefix = append(byPrefix, n)
		}
	}
	if len(byPrefix) == 1 {
		return byPrefix[0], nil
	}
	return Network{}, &NoSuchNetworkError{Name: ref}
}

// NetworkUsers maps each user-defined network's name to the containers (running or not) on it.
func (s *Store) NetworkUsers() (map[string][]string, error) {
	all, err := s.List()
	if err != nil {
		return nil, err
	}
	users := map[string][]string{}
	for _, c := range all {
		if c.Network != "" {
			users[c.Network] = append(users[c.Network], c.ShortID())
		}
	}
	return users, nil
}

// RemoveNetwork removes network ref with its bridge and iptables rules, refusing while any
// container (running or not) is on it: docker lets a stopped one keep a removed network, which
// then fails to start.
func (s *Store) RemoveNetwork(ctx context.Context, rt *runtime.Runtime, ref string) error {
	if slices.Contains(BuiltinNetworks, ref) {
		return fmt.Errorf("%s is a pre-defined network and cannot be removed", ref)
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	n, err := s.Network(ref)
	if err != nil {
		return err
	}
	users, err := s.NetworkUsers()
	if err != nil {
		return err
	}
	if ids := users[n.Name]; len(ids) > 0 {
		return &NetworkInUseError{Name: n.Name, IDs: ids}
	}
	return s.removeNetwork(ctx, rt, n)
}

// removeNetwork tears down n's bridge, then forgets n; under the lock.
func (s *Store) removeNetwork(ctx context.Context, rt *runtime.Runtime, n Network) error {
	if err := rt.RemoveBridge(ctx, n.Bridge()); err != nil {
		return fmt.Errorf("remove network %s: %w", n.Name, err)
	}
	if err := os.Remove(filepath.Join(s.networks, n.ID+".json")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove network %s: %w", n.Name, err)
	}
	return atomicfile.SyncDir(s.networks)
}

// PruneNetworks removes every user-defined network no container is on and returns their names.
func (s *Store) PruneNetworks(ctx context.Context, rt *runtime.Runtime) ([]string, error) {
	unlock, err := s.lock(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	all, err := s.Networks()
	if err != nil {
		return nil, err
	}
	users, err := s.NetworkUsers()
	if err != nil {
		return nil, err
	}
	var names []string
	var errs []error
	for _, n := range all {
		if len(users[n.Name]) > 0 {
			continue
		}
		if err := s.removeNetwork(ctx, rt, n); err != nil {
			errs = append(errs, err)
			continue
		}
		names = append(names, n.Name)
	}
	return names, errors.Join(errs...)
}

// checkNetwork makes sure the network a new container joins still exists, and names the
// container to its other members; under the lock, which RemoveNetwork holds too.
func (s *Store) checkNetwork(cfg *Config) error {
	if cfg.Network == "" {
		return nil
	}
	n, err := s.Network(cfg.Network)
	if err != nil {
		return err
	}
	if n.Bridge() != cfg.Spec.Bridge {
		return &NoSuchNetworkError{Name: cfg.Network}
	}
	names := append(append([]string{cfg.Name}, cfg.NetworkAliases...), cfg.ID[:12])
	if h := cfg.Spec.Hostname; h != "" && !slices.Contains(names, h) {
		names = append(names, h) // an explicit --hostname, as podman registers it
	}
	cfg.Spec.DNSNames = names
	return nil
}
