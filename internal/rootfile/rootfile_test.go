package rootfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestRead(t *testing.T) {
	root := t.TempDir()
	etc := filepath.Join(root, "etc")
	os.Mkdir(etc, 0o755)
	os.WriteFile(filepath.Join(etc, "passwd"), []byte("root:x:0:0::/root:/bin/sh\n"), 0o644)
	os.Symlink("/etc/passwd", filepath.Join(etc, "abs")) // resolves inside root, not to the host's
	if err := unix.Mkfifo(filepath.Join(etc, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	big, _ := os.Create(filepath.Join(etc, "big"))
	big.Truncate(DefaultLimit + 1)
	big.Close()
	if data, err := Read(root, "/etc/abs", 0); err != nil || !strings.HasPrefix(string(data), "root:") {
		t.Errorf("symlink: %q, %v", data, err)
	}
	var nr *NotRegularError
	if _, err := Read(root, "/etc/fifo", 0); !errors.As(err, &nr) || !strings.Contains(err.Error(), "/etc/fifo") {
		t.Errorf("fifo: %v", err)
	}
	if _, err := Read(root, "/etc", 0); !errors.As(err, &nr) {
		t.Errorf("directory: %v", err)
	}
	var tl *TooLargeError
	if _, err := Read(root, "/etc/big", 0); !errors.As(err, &tl) {
		t.Errorf("big: %v", err)
	}
	if _, err := Read(root, "/etc/passwd", 4); !errors.As(err, &tl) {
		t.Errorf("limit: %v", err)
	}
	if _, err := Read(root, "/etc/missing", 0); !IsNotExist(err) {
		t.Errorf("missing: %v", err)
	}
	if os.Geteuid() == 0 {
		if err := unix.Mknod(filepath.Join(etc, "zero"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 5))); err != nil {
			t.Fatal(err)
		}
		if _, err := Read(root, "/etc/zero", 0); !errors.As(err, &nr) {
			t.Errorf("device: %v", err)
		}
	}
}
