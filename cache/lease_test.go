package cache

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// leasedImage stores a tagged image with an unpacked first layer and leases it to a
// container directory, as `kiln run` does; it returns the lease's holder dir.
func leasedImage(t *testing.T, s *Store, tag string) (v1.Descriptor, v1.Hash, string) {
	t.Helper()
	img, desc := storeRandomImage(t, s, 2)
	if err := s.Tag(context.Background(), mustName(t, tag), desc); err != nil {
		t.Fatal(err)
	}
	_, diffID := firstLayer(t, img)
	fakeSnapshot(t, s, diffID, 16)
	holder := filepath.Join(s.Containers(), strings.Repeat("c", 64))
	if err := os.Mkdir(holder, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := s.PutLease(Lease{ID: "container-" + strings.Repeat("c", 64), Holder: holder, Images: []v1.Hash{desc.Digest},
		DiffIDs: []v1.Hash{diffID}}); err != nil {
		t.Fatal(err)
	}
	return desc, diffID, holder
}

// gcAll runs a full GC (cache dropped too) on a store reopened exclusively.
func gcAll(t *testing.T, s *Store) *Store {
	t.Helper()
	x := reopenExclusive(t, s)
	if _, err := x.GC(context.Background(), GCOptions{All: true}); err != nil {
		t.Fatal(err)
	}
	return x
}

// A container (running, stopped or detached: its directory exists) keeps its image through
// `rmi -f` and prune; once `kiln rm` removes the directory the next prune collects it.
func TestLeaseKeepsContainerImage(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	desc, diffID, holder := leasedImage(t, s, "busybox")
	if _, err := s.RemoveImage(ctx, "busybox", true); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.List(); len(list) != 0 {
		t.Fatalf("rmi -f left tags %v", list)
	}
	x := gcAll(t, s)
	if !x.HasBlob(desc.Digest) || !x.HasSnapshot(diffID) {
		t.Fatalf("prune removed a leased image: manifest kept=%v snapshot kept=%v", x.HasBlob(desc.Digest), x.HasSnapshot(diffID))
	}
	if err := os.Remove(holder); err != nil { // kiln rm
		t.Fatal(err)
	}
	x = gcAll(t, x)
	if x.HasBlob(desc.Digest) || x.HasSnapshot(diffID) {
		t.Fatal("prune kept the image after its container was removed")
	}
	if n := countFiles(t, x.leaseDir()); n != 0 {
		t.Fatalf("%d lease files left after their holder went", n)
	}
}

// rmi of an image a container uses fails in docker's words and changes nothing.
func TestRemoveImageInUse(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	desc, _, _ := leasedImage(t, s, "busybox")
	id, err := s.ImageID(desc)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.RemoveImage(ctx, "busybox", false)
	var ce *ConflictError
	if !errors.As(err, &ce) {
		t.Fatalf("rmi of a used image: %v", err)
	}
	want := `conflict: unable to remove repository reference "busybox" (must force) - container cccccccccccc is using its referenced image ` + id.Hex[:12]
	if err.Error() != want {
		t.Errorf("message:\n got %s\nwant %s", err, want)
	}
	if _, err := s.RemoveImage(ctx, id.Hex[:12], false); !errors.As(err, &ce) || !strings.Contains(err.Error(), "unable to delete "+id.Hex[:12]) {
		t.Errorf("rmi by ID of a used image: %v", err)
	}
	if list, _ := s.List(); len(list) != 1 {
		t.Fatalf("failed rmi changed the tags: %v", list)
	}
	// Another tag of the same image can go: the image stays tagged.
	if err := s.Tag(ctx, mustName(t, "other"), desc); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RemoveImage(ctx, "other", false); err != nil {
		t.Fatalf("untag of a second name: %v", err)
	}
}

// A lease without a holder lasts until DeleteLease; a damaged lease file fails GC by name
// instead of letting it delete what the lease might have named.
func TestLeaseWithoutHolderAndDamagedLease(t *testing.T) {
	s := openStore(t)
	img, desc := storeRandomImage(t, s, 1)
	_ = img
	if err := s.PutLease(Lease{ID: "build-x", Images: []v1.Hash{desc.Digest}}); err != nil {
		t.Fatal(err)
	}
	x := gcAll(t, s)
	if !x.HasBlob(desc.Digest) {
		t.Fatal("GC removed an image under a lease without holder")
	}
	if err := x.DeleteLease("build-x"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(x.leasePath("bad"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := x.GC(context.Background(), GCOptions{}); err == nil || !strings.Contains(err.Error(), "bad.json") {
		t.Fatalf("GC with a damaged lease: %v", err)
	}
	if !x.HasBlob(desc.Digest) {
		t.Fatal("GC deleted data despite a damaged lease")
	}
	if err := x.PutLease(Lease{ID: "../x"}); err == nil {
		t.Fatal("lease id with a path accepted")
	}
	if err := x.PutLease(Lease{ID: "y", Holder: "/etc"}); err == nil {
		t.Fatal("lease holder outside the store accepted")
	}
}

// A running build holds its Store open: prune (and rmi's sweep) cannot start, so nothing
// the build is using or has just written untagged can go.
func TestGCWaitsForRunningBuild(t *testing.T) {
	s := openStore(t)
	_, desc := storeRandomImage(t, s, 1) // written by the build, not tagged yet
	staging, err := s.TempDir("run-")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenExclusive(s.Root()); !errors.Is(err, ErrInUse) {
		t.Fatalf("OpenExclusive during a build: %v", err)
	}
	if !s.HasBlob(desc.Digest) || !exists(staging) {
		t.Fatal("build's data removed")
	}
}

// A volatile lease (a --rm container's, written without fsync) works as any lease; the empty
// file an OS crash may leave of one keeps nothing and is swept, and so are stray temp files.
func TestVolatileLease(t *testing.T) {
	s := openStore(t)
	_, desc := storeRandomImage(t, s, 1)
	holder := filepath.Join(s.Containers(), strings.Repeat("d", 64))
	if err := os.Mkdir(holder, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := s.PutLease(Lease{ID: "container-v", Holder: holder, Images: []v1.Hash{desc.Digest}, Volatile: true}); err != nil {
		t.Fatal(err)
	}
	x := gcAll(t, s)
	if !x.HasBlob(desc.Digest) {
		t.Fatal("GC removed an image under a volatile lease")
	}
	if err := os.Truncate(x.leasePath("container-v"), 0); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(x.leaseDir(), ".container-w.json.tmp-1"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if leases, err := x.Leases(); err != nil || len(leases) != 0 {
		t.Fatalf("an empty lease file counted: %v, %v", leases, err)
	}
	x = gcAll(t, x)
	if x.HasBlob(desc.Digest) {
		t.Fatal("an empty lease file kept its image")
	}
	if n := countFiles(t, x.leaseDir()); n != 0 {
		t.Fatalf("%d lease files left after GC", n)
	}
}
