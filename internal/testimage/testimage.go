// Package testimage builds small base images for tests from Debian's busybox-static,
// so no test needs network access to Docker Hub.
package testimage

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// BusyboxPath is where Debian's busybox-static installs the static binary.
const BusyboxPath = "/bin/busybox"

// Passwd and Group are the account files every test image carries.
const (
	Passwd = "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nuser:x:1000:1000:user:/home/user:/bin/sh\n"
	Group  = "root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\nuser:x:1000:\n"
)

// applets are linked into /bin so tests can call them without `busybox --install`.
var applets = []string{"sh", "ls", "cat", "echo", "env", "id", "hostname", "sleep", "true", "false",
	"mkdir", "rm", "mv", "cp", "ln", "touch", "chmod", "stat", "ip", "ps", "head", "tail", "wc", "dd",
	"sed", "grep", "find", "date", "test", "mount", "kill", "pwd", "printf", "httpd", "wget", "nc", "tr", "readlink"}

// RequireBusybox skips the test when busybox-static is not installed.
func RequireBusybox(t testing.TB) {
	t.Helper()
	if _, err := os.Stat(BusyboxPath); err != nil {
		if _, err := exec.LookPath("busybox"); err != nil {
			t.Skip("busybox-static not installed (apt-get install busybox-static; `make test` does this)")
		}
	}
}

// layerTar returns the busybox root filesystem as one uncompressed layer tar.
func layerTar(t testing.TB) []byte {
	t.Helper()
	RequireBusybox(t)
	bin, err := os.ReadFile(BusyboxPath)
	if err != nil {
		t.Fatalf("read busybox: %v", err)
	}
	mod := time.Unix(0, 0)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(name string, mode int64) {
		must(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode, ModTime: mod, Format: tar.FormatPAX}))
	}
	file := func(name string, mode int64, data []byte) {
		must(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: mod, Format: tar.FormatPAX}))
		_, err := tw.Write(data)
		must(t, err)
	}
	for _, d := range []string{"bin", "dev", "etc", "home", "home/user", "proc", "root", "sys", "tmp", "usr", "usr/bin", "var"} {
		mode := int64(0o755)
		if d == "tmp" {
			mode = 0o1777
		}
		dir(d, mode)
	}
	file("bin/busybox", 0o755, bin)
	names := append([]string(nil), applets...)
	sort.Strings(names)
	for _, a := range names {
		must(t, tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777, ModTime: mod, Format: tar.FormatPAX}))
	}
	file("etc/group", 0o644, []byte(Group))
	file("etc/passwd", 0o644, []byte(Passwd))
	must(t, tw.Close())
	return buf.Bytes()
}

// Busybox returns a one-layer OCI image with busybox, its common applets and account files.
func Busybox(t testing.TB) v1.Image {
	t.Helper()
	data := layerTar(t)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatalf("busybox layer: %v", err)
	}
	// OCI media types throughout: skopeo and umoci ignore Docker-typed manifests in a layout.
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, l)
	if err != nil {
		t.Fatalf("busybox image: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = goruntime.GOARCH, "linux"
	cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cf.Config.Cmd = []string{"sh"}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// BusyboxRootfs writes the busybox filesystem into dir (created if missing), for runtime tests.
func BusyboxRootfs(t testing.TB, dir string) {
	t.Helper()
	RequireBusybox(t)
	for _, d := range []string{"bin", "dev", "etc", "home/user", "proc", "root", "sys", "tmp", "usr/bin", "var"} {
		must(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	// os.Chmod ignores the raw 01000 bit; ModeSticky sets it.
	must(t, os.Chmod(filepath.Join(dir, "tmp"), os.ModeSticky|0o777))
	bin, err := os.ReadFile(BusyboxPath)
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, "bin/busybox"), bin, 0o755))
	for _, a := range applets {
		must(t, os.Symlink("busybox", filepath.Join(dir, "bin", a)))
	}
	must(t, os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte(Passwd), 0o644))
	must(t, os.WriteFile(filepath.Join(dir, "etc/group"), []byte(Group), 0o644))
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("testimage: %v", err)
	}
}
