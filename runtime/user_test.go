package runtime

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestResolveUser(t *testing.T) {
	rootfs := t.TempDir()
	os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755)
	os.WriteFile(filepath.Join(rootfs, "etc/passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n# comment\nbad line\napp:x:1000:1000::/home/app:/bin/sh\nsvc:x:999:999:::/bin/false\n"), 0o644)
	os.WriteFile(filepath.Join(rootfs, "etc/group"), []byte("root:x:0:\napp:x:1000:\nwheel:x:10:app,other\naudio:x:29:app\nsvc:x:999:\n"), 0o644)
	cases := []struct {
		spec     string
		uid, gid uint32
		extra    []uint32
		home     string
		wantErr  bool
	}{
		{"", 0, 0, nil, "/root", false},
		{"app", 1000, 1000, []uint32{10, 29}, "/home/app", false},
		{"1000", 1000, 1000, []uint32{10, 29}, "/home/app", false},
		{"app:wheel", 1000, 10, nil, "/home/app", false},
		{"1000:29", 1000, 29, nil, "/home/app", false},
		{"4242", 4242, 0, nil, "/", false},
		{"4242:4343", 4242, 4343, nil, "/", false},
		{"svc", 999, 999, nil, "/", false},
		{"nobody", 0, 0, nil, "", true},
		{"app:nogroup", 0, 0, nil, "", true},
		{"app:", 0, 0, nil, "", true},
	}
	for _, c := range cases {
		u, err := resolveUser(rootfs, c.spec)
		if c.wantErr {
			if err == nil {
				t.Errorf("%q: want error, got %+v", c.spec, u)
			}
			continue
		}
		if err != nil || u.UID != c.uid || u.GID != c.gid || !slices.Equal(u.AdditionalGids, c.extra) || u.Home != c.home {
			t.Errorf("%q: got %+v home %q err %v", c.spec, u.User, u.Home, err)
		}
	}
}

// /etc/passwd as an absolute symlink resolves inside the rootfs, never to the host's file.
func TestResolveUserConfined(t *testing.T) {
	rootfs := t.TempDir()
	os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755)
	os.MkdirAll(filepath.Join(rootfs, "lib"), 0o755)
	os.WriteFile(filepath.Join(rootfs, "lib/passwd"), []byte("inside:x:7:7::/:/bin/sh\n"), 0o644)
	os.Symlink("/../../../../../lib/passwd", filepath.Join(rootfs, "etc/passwd"))
	if _, err := resolveUser(rootfs, "inside"); err != nil {
		t.Fatal(err)
	}
	if _, err := resolveUser(rootfs, "root"); err == nil {
		t.Fatal("resolved the host's root user through a symlink")
	}
	if u, err := resolveUser(t.TempDir(), "0:0"); err != nil || u.UID != 0 {
		t.Fatalf("no /etc/passwd must still allow numeric ids: %v", err)
	}
}

// FuzzResolveUser feeds arbitrary account files and user specs: resolution must never panic and
// numeric specs must always resolve.
func FuzzResolveUser(f *testing.F) {
	f.Add("root:x:0:0:root:/root:/bin/sh\n", "wheel:x:10:root\n", "root")
	f.Add("a:x:1:1::/:/\n::::\n", ":::\n", "1:2")
	f.Add("x", "y", "x:y")
	f.Fuzz(func(t *testing.T, passwd, group, spec string) {
		rootfs := t.TempDir()
		os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755)
		os.WriteFile(filepath.Join(rootfs, "etc/passwd"), []byte(passwd), 0o644)
		os.WriteFile(filepath.Join(rootfs, "etc/group"), []byte(group), 0o644)
		resolveUser(rootfs, spec) //nolint:errcheck // only panics matter here
		if _, err := resolveUser(rootfs, "12345:678"); err != nil {
			t.Fatalf("numeric ids must resolve: %v", err)
		}
	})
}

// A FIFO, a device or a huge file as the image's /etc/passwd or /etc/group fails the run at
// once with an error naming the file, with or without a user given (issue 10.3): it used to
// block kiln forever in open(2).
func TestRunHostileAccountFiles(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt, state string) {
		kinds := map[string]func(string) error{
			"fifo":   func(p string) error { return unix.Mkfifo(p, 0o644) },
			"device": func(p string) error { return unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 5))) },
			"huge": func(p string) error {
				f, err := os.Create(p)
				if err == nil {
					err = errors.Join(f.Truncate(1<<30), f.Close())
				}
				return err
			},
		}
		for kind, mk := range kinds {
			for _, file := range []string{"passwd", "group"} {
				for _, user := range []string{"", "nobody", "1000:1000"} {
					layer := t.TempDir()
					os.Mkdir(filepath.Join(layer, "etc"), 0o755)
					if err := mk(filepath.Join(layer, "etc", file)); err != nil {
						t.Fatal(err)
					}
					s := testSpec(t, rt, state, "true")
					s.Lower = append(s.Lower, layer)
					s.User = user
					os.MkdirAll(s.Upper, 0o755)
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					_, err := rtOf(s).Run(ctx, s)
					timedOut := ctx.Err() != nil
					cancel()
					if err == nil || !strings.Contains(err.Error(), "/etc/"+file) || timedOut {
						t.Errorf("%s /etc/%s, user %q: err %v, want an error naming the file", kind, file, user, err)
					}
					assertNoLeftovers(t, rt, state, s)
				}
			}
		}
	})
}
