package container

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/runtime"
)

// fullConfig sets every stored field to something other than its zero value.
func fullConfig() Config {
	return Config{ID: strings.Repeat("ab", 32), Name: "web", Image: "busybox",
		ImageDigest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("1", 64)}, Args: []string{"sh", "-c", "true"},
		Command: &Command{Cmd: []string{"sh", "-c", "true"}},
		Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Restart: RestartPolicy{Name: RestartOnFailure, MaximumRetryCount: 3},
		StopSignal: "SIGINT", AutoRemove: true, Labels: map[string]string{"tier": "web"}, StopTimeout: ptr(7),
		Exposed: []string{"53/udp", "80/tcp"},
		Spec: runtime.Spec{ID: strings.Repeat("ab", 32), Lower: []string{"/s/l1", "/s/l2"}, Upper: "/c/upper", Work: "/c/work", Volatile: true,
			BundleDir: "/c/bundle", Args: []string{"sh", "-c", "true"}, Env: []string{"A=1"}, Cwd: "/w",
			User: "1:2", Hostname: "h", ReadOnlyRootfs: true, Network: runtime.NetworkBridge,
			Mounts: []runtime.Mount{{Type: runtime.Tmpfs, Target: "/t", Options: []string{"size=1m"}},
				{Type: runtime.Bind, Source: "/src", Target: "/dst", ReadOnly: true}},
			Ports:     []runtime.PortMapping{{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 8080, ContainerPort: 80, Protocol: "udp"}},
			Bridge:    runtime.Bridge{Name: "br9", Subnet: netip.MustParsePrefix("10.9.0.0/24")},
			Resources: runtime.Resources{Memory: 1 << 20, CPUs: 1.5, PidsLimit: 9, MemorySwap: -1, CpusetCPUs: "0"}, CapAdd: []string{"NET_ADMIN"}, CapDrop: []string{"ALL"},
			NewPrivileges: true, Seccomp: runtime.SeccompProfileFile, SeccompProfile: "/p.json", Terminal: true,
			StopGrace: 5 * time.Second,
			HostAccess: runtime.HostAccess{Init: true, Privileged: true, HostPID: true, HostIPC: true,
				Devices:  []runtime.Device{{Host: "/dev/fuse", Container: "/dev/f", Permissions: "rw"}},
				Ulimits:  []runtime.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}, {Name: "core", Soft: runtime.RlimitInfinity, Hard: runtime.RlimitInfinity}},
				GroupAdd: []string{"audio", "44"}, Sysctls: map[string]string{"net.ipv4.ip_forward": "1"}, ShmSize: 1 << 27,
				ExtraHosts: []runtime.HostEntry{{Name: "db", IP: netip.MustParseAddr("10.0.0.5")}, {Name: "gw", Gateway: true}},
				DNS:        runtime.DNS{Servers: []netip.Addr{netip.MustParseAddr("9.9.9.9")}, Search: []string{"example.com"}, Options: []string{"ndots:2"}}}},
	}
}

func ptr[T any](v T) *T { return &v }

// A version 1 record (before docker's run flags) reads as a container without them.
func TestRecordReadsVersion1(t *testing.T) {
	cfg, legacy, err := decodeRecord([]byte(`{"version": 1, "id": "x", "image": "busybox", "args": ["true"], "stopSignal": "SIGINT",
		"spec": {"network": "none", "seccomp": "default", "resources": {"memory": 7340032}}}`))
	if err != nil || legacy {
		t.Fatalf("version 1 record: legacy=%v %v", legacy, err)
	}
	if cfg.StopSignal != "SIGINT" || cfg.Spec.Resources.Memory != 7<<20 || cfg.Labels != nil || cfg.StopTimeout != nil ||
		!reflect.DeepEqual(cfg.Spec.HostAccess, runtime.HostAccess{}) {
		t.Errorf("version 1 record read as %+v", cfg)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	want := fullConfig()
	dir := t.TempDir()
	if err := writeRecord(dir, want); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, configFile))
	if err != nil {
		t.Fatal(err)
	}
	got, legacy, err := decodeRecord(data)
	if err != nil || legacy {
		t.Fatalf("decode: legacy=%v %v", legacy, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}
	if !strings.Contains(string(data), `"version": 2`) || strings.Contains(string(data), `"Stdin"`) {
		t.Errorf("record is not the versioned format:\n%s", data)
	}
}

// legacyJSON is a container.json as the first release wrote it: Config with runtime.Spec.
const legacyJSON = `{
  "Id": "` + "abababababababababababababababababababababababababababababababab" + `",
  "Name": "old", "Image": "busybox", "Args": ["sleep", "300"], "Created": "2026-01-02T03:04:05Z",
  "RestartPolicy": {"Name": "always"}, "StopSignal": "SIGINT",
  "Spec": {"ID": "x", "Lower": ["/s/l1"], "Upper": "/c/upper", "Work": "/c/work", "BundleDir": "/c/bundle", "StateDir": "",
    "Args": ["sleep", "300"], "Env": ["A=1"], "Cwd": "", "User": "", "Hostname": "h",
    "Mounts": [{"Type": 1, "Source": "", "Target": "/t", "ReadOnly": false, "Options": null}],
    "ReadOnlyRootfs": false, "Network": 2, "Ports": [{"HostIP": "", "HostPort": 80, "ContainerPort": 8080, "Protocol": "tcp"}],
    "Bridge": {"Name": "", "Subnet": ""}, "Resources": {"Memory": 0, "CPUs": 0.5, "PidsLimit": 0}, "CapAdd": null, "CapDrop": null,
    "NewPrivileges": true, "Seccomp": 1, "SeccompProfile": "", "Terminal": false, "Stdin": null, "Stdout": null, "Stderr": null,
    "Runtime": "runc", "StopGrace": 2000000000, "Debug": null}
}`

func TestRecordReadsFirstReleaseFormat(t *testing.T) {
	cfg, legacy, err := decodeRecord([]byte(legacyJSON))
	if err != nil || !legacy {
		t.Fatalf("legacy record: legacy=%v %v", legacy, err)
	}
	sp := cfg.Spec
	if cfg.Name != "old" || cfg.Restart.Name != RestartAlways || sp.Network != runtime.NetworkBridge || sp.Seccomp != runtime.SeccompUnconfined ||
		len(sp.Mounts) != 1 || sp.Mounts[0].Type != runtime.Tmpfs || sp.Ports[0].ContainerPort != 8080 || sp.Resources.CPUs != 0.5 ||
		sp.StopGrace != 2*time.Second || !sp.NewPrivileges || sp.ID != cfg.ID || sp.Lower[0] != "/s/l1" {
		t.Errorf("migrated badly: %+v", cfg)
	}
}

// A record kiln cannot read is an error naming the file, for every container command.
func TestBadRecordsFailByName(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, data := range []string{"{", `{"version": 7, "id": "x"}`, `{"version": 1}`, `{"version": 1, "id": "x", "spec": {"network": "warp"}}`, `[]`, `null`} {
		dir := filepath.Join(s.dir, strings.Repeat("d", 64))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, configFile), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := s.List()
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, configFile)) {
			t.Errorf("record %q: %v", data, err)
		}
	}
}

// Opening a store with a first-release container rewrites its record and leases its image.
func TestLegacyContainerIsMigratedAndLeased(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	id := strings.Repeat("ab", 32)
	dir := filepath.Join(s.dir, id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, configFile), []byte(legacyJSON), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := s.Get("old")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(dir, configFile))
	if _, legacy, err := decodeRecord(data); err != nil || legacy {
		t.Fatalf("record not rewritten: legacy=%v %v", legacy, err)
	}
	st, err := cache.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	leases, err := st.Leases()
	if err != nil || len(leases) != 1 || leases[0].ID != c.leaseID() || leases[0].Holder != c.Dir() {
		t.Fatalf("leases after migration: %+v, %v", leases, err)
	}
}

// Create leases the container's image until its directory is gone.
func TestCreateLeasesImage(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Image: "busybox", ImageDigest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("2", 64)}, Args: []string{"true"}}
	c, err := s.Create(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	st, err := cache.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	leases, _ := st.Leases()
	if len(leases) != 1 || len(leases[0].Images) != 1 || leases[0].Images[0] != cfg.ImageDigest {
		t.Fatalf("leases: %+v", leases)
	}
	rt, err := runtime.New(runtime.Options{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(context.Background(), rt, c, false); err != nil {
		t.Fatal(err)
	}
	if leases, _ := st.Leases(); len(leases) != 0 {
		t.Fatalf("lease outlives rm: %+v", leases)
	}
}

// FuzzDecodeRecord: any container.json either decodes or fails; it never panics, and what
// decodes writes back to a record that decodes to the same container.
func FuzzDecodeRecord(f *testing.F) {
	f.Add([]byte(legacyJSON))
	if data, err := json.Marshal(toRecord(fullConfig())); err == nil {
		f.Add(data)
	}
	f.Add([]byte(`{"version":1,"id":"x","spec":{"network":"none","seccomp":"default","mounts":[{"type":"bind"}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, _, err := decodeRecord(data)
		if err != nil {
			return
		}
		again, err := json.Marshal(toRecord(cfg))
		if err != nil {
			t.Fatal(err)
		}
		back, legacy, err := decodeRecord(again)
		if err != nil || legacy {
			t.Fatalf("re-encoded record does not decode: %v\n%s", err, again)
		}
		if !reflect.DeepEqual(toRecord(back), toRecord(cfg)) {
			t.Fatalf("round trip changed the record:\n%+v\n%+v", toRecord(back), toRecord(cfg))
		}
	})
}

// A --rm container's files are written without fsync; what an OS crash can leave of them (an
// empty record, an empty state, unfinished .new-/.rm- dirs) never breaks ps, and the next Create
// sweeps it. Its lease, empty too, keeps nothing.
func TestCrashLeftoversOfRmContainers(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	keep, err := s.Create(ctx, Config{Image: "busybox", Args: []string{"true"}})
	if err != nil {
		t.Fatal(err)
	}
	torn, err := s.Create(ctx, Config{Image: "busybox", Args: []string{"true"}, AutoRemove: true})
	if err != nil {
		t.Fatal(err)
	}
	// What an OS crash leaves of files that were never synced: empty files under their names.
	for _, f := range []string{configFile, stateFile} {
		if err := os.Truncate(filepath.Join(torn.Dir(), f), 0); err != nil {
			t.Fatal(err)
		}
	}
	if st, err := readState(torn.Dir()); err != nil || st.Status != StatusExited {
		t.Fatalf("empty state: %+v, %v", st, err)
	}
	leftovers := []string{filepath.Join(s.dir, ".new-"+strings.Repeat("e", 64)), filepath.Join(s.dir, ".rm-"+strings.Repeat("f", 64))}
	for _, d := range leftovers {
		if err := os.MkdirAll(filepath.Join(d, "upper"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.List()
	if err != nil || len(all) != 1 || all[0].ID != keep.ID {
		t.Fatalf("List with a torn --rm container: %v, %v", all, err)
	}
	if _, err := s.Create(ctx, Config{Image: "busybox", Args: []string{"true"}}); err != nil {
		t.Fatal(err)
	}
	for _, d := range append(leftovers, torn.Dir()) {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("Create did not sweep %s: %v", d, err)
		}
	}
	if _, err := os.Stat(keep.Dir()); err != nil {
		t.Errorf("sweep removed a whole container: %v", err)
	}
}
