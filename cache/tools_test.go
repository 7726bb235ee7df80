package cache

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/kiln-build/kiln/internal/testimage"
)

// ociBusybox is testimage.Busybox with OCI media types: skopeo 1.9 and umoci 0.4 ignore
// Docker-typed manifests in an OCI layout.
func ociBusybox(t *testing.T) v1.Image {
	t.Helper()
	src := testimage.Busybox(t)
	cf, err := src.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	ls, err := src.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var adds []mutate.Addendum
	for _, l := range ls {
		adds = append(adds, mutate.Addendum{Layer: l, MediaType: types.OCILayer})
	}
	img, err := mutate.Append(base, adds...)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	dst = dst.DeepCopy()
	dst.Config, dst.OS, dst.Architecture = cf.Config, cf.OS, cf.Architecture
	if img, err = mutate.ConfigFile(img, dst); err != nil {
		t.Fatal(err)
	}
	return img
}

// The store must stay a layout that other OCI tools read, under the full normalized name.
func TestLayoutReadableByTools(t *testing.T) {
	s := openStore(t)
	img := ociBusybox(t)
	desc, err := s.WriteImage(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	n := mustName(t, "hello")
	if err := s.Tag(context.Background(), n, desc); err != nil {
		t.Fatal(err)
	}
	ref := s.Root() + ":" + n.String() // …:docker.io/library/hello:latest
	t.Run("skopeo", func(t *testing.T) {
		if _, err := exec.LookPath("skopeo"); err != nil {
			t.Skip("skopeo not installed")
		}
		out, err := exec.Command("skopeo", "inspect", "oci:"+ref).CombinedOutput()
		if err != nil {
			t.Fatalf("skopeo inspect oci:%s: %v\n%s", ref, err, out)
		}
		var got struct{ Digest string }
		if err := json.Unmarshal(out, &got); err != nil || got.Digest != desc.Digest.String() {
			t.Fatalf("skopeo saw digest %q (%v), want %s", got.Digest, err, desc.Digest)
		}
	})
	t.Run("umoci", func(t *testing.T) {
		if _, err := exec.LookPath("umoci"); err != nil {
			t.Skip("umoci not installed")
		}
		bundle := filepath.Join(t.TempDir(), "bundle")
		args := []string{"unpack", "--image", ref, bundle}
		if os.Geteuid() != 0 {
			args = append([]string{"unpack", "--rootless"}, args[1:]...)
		}
		out, err := exec.Command("umoci", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("umoci %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if _, err := os.Stat(filepath.Join(bundle, "rootfs", "bin", "busybox")); err != nil {
			t.Fatalf("unpacked rootfs lacks busybox: %v", err)
		}
	})
}
