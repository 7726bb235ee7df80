package cache

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestTagListUntag(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	_, d1 := storeRandomImage(t, s, 1)
	_, d2 := storeRandomImage(t, s, 1)
	for _, tc := range []struct {
		name string
		desc v1.Descriptor
	}{{"hello", d1}, {"localhost:5000/a/b:1", d1}, {"hello", d2}, {"zzz", d2}} {
		if err := s.Tag(ctx, mustName(t, tc.name), tc.desc); err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tg := range list {
		got = append(got, tg.Name.Short()+"="+tg.Descriptor.Digest.Hex[:6])
	}
	want := []string{"hello:latest=" + d2.Digest.Hex[:6], "zzz:latest=" + d2.Digest.Hex[:6], "localhost:5000/a/b:1=" + d1.Digest.Hex[:6]}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("List = %v, want %v (sorted by normalized name, tag moved)", got, want)
	}
	if err := s.Untag(ctx, mustName(t, "zzz")); err != nil {
		t.Fatal(err)
	}
	if err := s.Untag(ctx, mustName(t, "zzz")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Untag: %v", err)
	}
	if list, _ := s.List(); len(list) != 2 {
		t.Fatalf("after untag: %v", list)
	}
}

// A dangling image is listed once, found by ID (without a name), kept by GC, named by Tag
// (then no longer dangling) and removed by RemoveImage of its ID.
func TestKeepUntagged(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	d := storeDangling(t, s)
	if err := s.KeepUntagged(ctx, d); err != nil {
		t.Fatal(err)
	}
	id, err := s.ImageID(d)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Dangling(); err != nil || len(got) != 1 || got[0].Digest != d.Digest {
		t.Fatalf("Dangling = %v, %v; want the one image, once", got, err)
	}
	if list, _ := s.List(); len(list) != 0 {
		t.Fatalf("List has a dangling image: %v", list)
	}
	for _, ref := range []string{id.Hex[:12], id.String(), d.Digest.String()} {
		if got, n, err := s.Lookup(ref); err != nil || got.Digest != d.Digest || !n.IsZero() {
			t.Errorf("Lookup(%s) = %v %v %v", ref, got.Digest, n, err)
		}
	}
	x := reopenExclusive(t, s)
	if _, err := x.GC(ctx, GCOptions{All: true}); err != nil || !x.HasBlob(d.Digest) {
		t.Fatalf("GC without an image prune deleted the dangling image (err %v)", err)
	}
	if err := x.Tag(ctx, mustName(t, "named"), d); err != nil {
		t.Fatal(err)
	}
	if got, _ := x.Dangling(); len(got) != 0 {
		t.Fatalf("a tagged image is still dangling: %v", got)
	}
	if err := x.KeepUntagged(ctx, d); err != nil {
		t.Fatal(err)
	}
	if got, _ := x.Dangling(); len(got) != 0 {
		t.Fatalf("KeepUntagged of a tagged image made it dangling: %v", got)
	}
	if rm, err := x.RemoveImage(ctx, "named", false); err != nil || len(rm.Untagged) != 1 || rm.Deleted != id {
		t.Fatalf("rmi of the last tag: %+v %v", rm, err)
	}

	d2 := storeDangling(t, x)
	id2, _ := x.ImageID(d2)
	rm, err := x.RemoveImage(ctx, id2.Hex[:12], false)
	if err != nil || len(rm.Untagged) != 0 || rm.Deleted != id2 {
		t.Fatalf("rmi of a dangling image: %+v %v", rm, err)
	}
	if got, _ := x.Dangling(); len(got) != 0 {
		t.Fatalf("after rmi: %v", got)
	}
	if _, _, err := x.Lookup(id2.Hex[:12]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Lookup after rmi: %v", err)
	}
}

func TestTagRejects(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	_, d := storeRandomImage(t, s, 1)
	absent := d
	absent.Digest.Hex = strings.Repeat("0", 64)
	other := "docker.io/library/x@sha256:" + strings.Repeat("1", 64)
	cases := map[string]struct {
		n    string
		desc v1.Descriptor
	}{
		"absent manifest":  {"a", absent},
		"layer media type": {"a", v1.Descriptor{MediaType: types.DockerLayer, Digest: d.Digest, Size: d.Size}},
		"digest mismatch":  {other, d},
	}
	for name, c := range cases {
		if err := s.Tag(ctx, mustName(t, c.n), c.desc); err == nil {
			t.Errorf("%s: Tag succeeded", name)
		}
	}
	if err := s.Tag(ctx, mustName(t, "x@"+d.Digest.String()), d); err != nil {
		t.Errorf("digest name with matching digest: %v", err)
	}
}

func TestLookup(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	img, d := storeRandomImage(t, s, 1)
	if err := s.Tag(ctx, mustName(t, "app:1"), d); err != nil {
		t.Fatal(err)
	}
	id, _ := img.ConfigName()
	for _, ref := range []string{"app:1", "docker.io/library/app:1", "app@" + d.Digest.String(), d.Digest.String(), id.String(), id.Hex, id.Hex[:12], "sha256:" + id.Hex[:5]} {
		desc, n, err := s.Lookup(ref)
		if err != nil {
			t.Errorf("Lookup(%q): %v", ref, err)
			continue
		}
		if desc.Digest != d.Digest || !strings.HasPrefix(n.Short(), "app") {
			t.Errorf("Lookup(%q) = %s %s", ref, desc.Digest, n)
		}
	}
	for _, ref := range []string{"app", "app:2", "ffffffffffff", "sha256:ffff"} {
		if _, _, err := s.Lookup(ref); !errors.Is(err, ErrNotFound) {
			t.Errorf("Lookup(%q) = %v, want ErrNotFound", ref, err)
		}
	}
	if _, _, err := s.Lookup("NOT valid"); err == nil || !strings.Contains(err.Error(), "invalid reference format") {
		t.Errorf("invalid ref: %v", err)
	}
}

func TestLookupAmbiguousPrefix(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	ids := map[byte]bool{}
	// Store images until two image IDs share a first hex digit.
	for i := 0; ; i++ {
		img, d := storeRandomImage(t, s, 1)
		id, _ := img.ConfigName()
		if err := s.Tag(ctx, mustName(t, fmt.Sprintf("img%d", i)), d); err != nil {
			t.Fatal(err)
		}
		if ids[id.Hex[0]] {
			_, _, err := s.Lookup(id.Hex[:1])
			if err == nil || !strings.Contains(err.Error(), "ambiguous") {
				t.Fatalf("ambiguous prefix %q: %v", id.Hex[:1], err)
			}
			if _, _, err := s.Lookup(id.Hex[:20]); err != nil {
				t.Fatalf("longer prefix: %v", err)
			}
			return
		}
		ids[id.Hex[0]] = true
	}
}

// The same image under two tags is one ID, so its prefix is not ambiguous.
func TestLookupPrefixSameImage(t *testing.T) {
	s := openStore(t)
	img, d := storeRandomImage(t, s, 1)
	for _, n := range []string{"b", "a"} {
		if err := s.Tag(context.Background(), mustName(t, n), d); err != nil {
			t.Fatal(err)
		}
	}
	id, _ := img.ConfigName()
	_, n, err := s.Lookup(id.Hex[:6])
	if err != nil || n.Short() != "a:latest" {
		t.Fatalf("Lookup = %s, %v; want the first tag a:latest", n, err)
	}
}

const (
	childEnv   = "KILN_CACHE_TEST_CHILD" // "<mode>:<id>" in a re-executed test binary
	childRoot  = "KILN_CACHE_TEST_ROOT"
	childDesc  = "KILN_CACHE_TEST_DESC"
	childNames = 4 // tags per child process
)

// childModes are the jobs a re-executed test binary can do, by mode name.
var childModes = map[string]func(id string) error{"tag": tagChild, "stage": stageChild, "open": openChild}

func TestMain(m *testing.M) {
	if v := os.Getenv(childEnv); v != "" {
		mode, id, _ := strings.Cut(v, ":")
		if err := childModes[mode](id); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runChild re-executes the test binary in mode; extra are more environment entries.
func runChild(root, mode string, id int, extra ...string) error {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s:%d", childEnv, mode, id), childRoot+"="+root)
	cmd.Env = append(cmd.Env, extra...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("child %s %d: %v: %s", mode, id, err, out)
	}
	return nil
}

// tagChild opens the shared root and tags names with the descriptor it was given.
func tagChild(id string) error {
	s, err := Open(os.Getenv(childRoot))
	if err != nil {
		return err
	}
	defer s.Close()
	var d v1.Descriptor
	if err := json.Unmarshal([]byte(os.Getenv(childDesc)), &d); err != nil {
		return err
	}
	for i := range childNames {
		n, err := ParseName(fmt.Sprintf("proc%s/img:%d", id, i))
		if err != nil {
			return err
		}
		if err := s.Tag(context.Background(), n, d); err != nil {
			return err
		}
	}
	return nil
}

func TestConcurrentTagging(t *testing.T) {
	const workers = 16
	s := openStore(t)
	_, d := storeRandomImage(t, s, 1)
	descJSON, _ := json.Marshal(d)
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers)
	for i := range workers {
		wg.Go(func() {
			if err := runChild(s.Root(), "tag", i, childDesc+"="+string(descJSON)); err != nil {
				errs <- err
			}
		})
		wg.Go(func() {
			if err := s.Tag(context.Background(), mustName(t, fmt.Sprintf("goroutine/img:%d", i)), d); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	raw, err := os.ReadFile(s.indexPath())
	if err != nil || !json.Valid(raw) {
		t.Fatalf("index.json invalid: %v", err)
	}
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if want := workers + workers*childNames; len(list) != want {
		t.Fatalf("%d tags survived, want %d", len(list), want)
	}
}

// An image a name moved off, named no other way, is kept as dangling by KeepUnnamed (as docker
// keeps a rebuilt tag's old image as <none>); one still named, or named again, is not.
func TestKeepUnnamed(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	_, a := storeRandomImage(t, s, 1)
	_, b := storeRandomImage(t, s, 1)
	app, other := mustName(t, "app"), mustName(t, "other")
	dangling := func() []v1.Hash {
		t.Helper()
		got, err := s.Dangling()
		if err != nil {
			t.Fatal(err)
		}
		var out []v1.Hash
		for _, d := range got {
			out = append(out, d.Digest)
		}
		return out
	}
	for _, step := range []struct {
		name Name
		desc v1.Descriptor
		want []v1.Hash
	}{
		{app, a, nil},
		{other, a, nil},
		{app, b, nil},                   // a is still other's
		{other, b, []v1.Hash{a.Digest}}, // now nothing names a
		{app, a, nil},                   // named again; b is other's
	} {
		prev, err := s.Named([]Name{step.name})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Tag(ctx, step.name, step.desc); err != nil {
			t.Fatal(err)
		}
		if err := s.KeepUnnamed(ctx, prev); err != nil {
			t.Fatal(err)
		}
		if got := dangling(); !slices.Equal(got, step.want) {
			t.Fatalf("after tagging %s: dangling %v, want %v", step.name.Short(), got, step.want)
		}
	}
}
