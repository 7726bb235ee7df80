package container

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

func TestVolumeRecordAndCrashLeftovers(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.CreateVolume(ctx, "data", map[string]string{"a": "b"})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(v.Mountpoint), volumeFile))
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(raw, &rec); err != nil || rec["version"] != float64(volumeVersion) || rec["name"] != "data" {
		t.Errorf("volume.json: %s %v", raw, err)
	}
	// A record from a newer kiln is refused with what to do, never misread.
	future := filepath.Join(s.volumesDir(), "future")
	os.MkdirAll(filepath.Join(future, volumeDataDir), 0o700)
	os.WriteFile(filepath.Join(future, volumeFile), []byte(`{"version": 9, "name": "future"}`), 0o600)
	if _, err := s.Volume("future"); err == nil || !strings.Contains(err.Error(), "upgrade kiln") {
		t.Errorf("future record: %v", err)
	}
	os.RemoveAll(future)
	// What a crash left mid-create or mid-remove is neither listed nor kept.
	for _, d := range []string{".new-x", ".rm-y"} {
		os.MkdirAll(filepath.Join(s.volumesDir(), d, volumeDataDir), 0o700)
	}
	if vols, err := s.Volumes(); err != nil || len(vols) != 1 || vols[0].Name != "data" || vols[0].Labels["a"] != "b" {
		t.Errorf("Volumes: %+v %v", vols, err)
	}
	if _, err := s.CreateVolume(ctx, "other", nil); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{".new-x", ".rm-y"} {
		if _, err := os.Stat(filepath.Join(s.volumesDir(), d)); !os.IsNotExist(err) {
			t.Errorf("%s survived the next create: %v", d, err)
		}
	}
	for _, bad := range []string{"a", "../x", "a/b", ".hidden"} {
		if _, err := s.CreateVolume(ctx, bad, nil); err == nil {
			t.Errorf("CreateVolume(%q) accepted", bad)
		}
	}
}

// Processes creating one volume at once all get it, made once.
func TestCreateVolumeConcurrent(t *testing.T) {
	root := t.TempDir()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(root)
			if err == nil {
				_, err = s.CreateVolume(context.Background(), "shared", nil)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	s, _ := Open(root)
	if vols, err := s.Volumes(); err != nil || len(vols) != 1 {
		t.Errorf("Volumes: %+v %v", vols, err)
	}
}

// A Create that fails leaves none of the anonymous volumes it made.
func TestCreateFailureRemovesAnonymousVolumes(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Image: "x", Args: []string{"true"},
		Volumes: []VolumeMount{{Target: "/anon", NoCopy: true}, {Name: "kept", Target: "/k", NoCopy: true}, {Name: "../bad", Target: "/b"}}}
	if _, err := s.Create(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "invalid volume name") {
		t.Fatalf("Create with a bad volume name: %v", err)
	}
	vols, err := s.Volumes()
	if err != nil || len(vols) != 1 || vols[0].Name != "kept" {
		t.Errorf("after the failed Create: %+v %v, want the named volume only", vols, err)
	}
}

// An image view a killed copy-up left mounted is unmounted and removed by the next volume create.
func TestSweepLeftoverView(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount")
	}
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	src, view := t.TempDir(), filepath.Join(s.volumesDir(), ".view-123")
	os.WriteFile(filepath.Join(src, "keep"), []byte("x"), 0o644)
	if err := os.MkdirAll(filepath.Join(view, "rootfs"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(src, filepath.Join(view, "rootfs"), "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(filepath.Join(view, "rootfs"), unix.MNT_DETACH) })
	if _, err := s.CreateVolume(context.Background(), "v1", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(view); !os.IsNotExist(err) {
		t.Errorf("leftover view survived: %v", err)
	}
	if _, err := os.Stat(filepath.Join(src, "keep")); err != nil {
		t.Errorf("the sweep removed through the mount: %v", err)
	}
}
