package main

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// export → import round-trips a container's filesystem into a runnable image; commit keeps a
// container's changes as a layer on its image.
func TestExportImportCommit(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	ok(t, root, "run", "--name", "c", "busybox", "sh", "-c", "echo changed > /marker && rm /bin/ls")

	tarPath := filepath.Join(t.TempDir(), "fs.tar")
	ok(t, root, "export", "-o", tarPath, "c")
	names := map[string]bool{}
	f, err := os.Open(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names[h.Name] = true
	}
	f.Close()
	if !names["marker"] || !names["bin/busybox"] || names["bin/ls"] || names["proc/self"] {
		t.Fatalf("export: marker %v busybox %v ls %v proc %v", names["marker"], names["bin/busybox"], names["bin/ls"], names["proc/self"])
	}
	if r := ok(t, root, "export", "c"); !bytes.Equal([]byte(r.stdout)[:512], mustRead(t, tarPath)[:512]) {
		t.Error("export to stdout differs from -o")
	}

	id := strings.TrimSpace(ok(t, root, "import", "-m", "from a tarball", tarPath, "imported:v1").stdout)
	if !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("import printed %q", id)
	}
	if r := ok(t, root, "run", "--rm", "imported:v1", "/bin/busybox", "cat", "/marker"); r.stdout != "changed\n" {
		t.Fatalf("run of the imported image: %q", r.stdout)
	}
	if r := ok(t, root, "history", "--format", "{{.CreatedBy}}|{{.Comment}}", "imported:v1"); r.stdout != "kiln import|from a tarball\n" {
		t.Errorf("imported history: %q", r.stdout)
	}
	gz := kiln(t, root, bytes.NewReader(mustRead(t, tarPath)), "image", "import", "-", "stdin")
	if gz.code != 0 {
		t.Fatalf("import -: exit %d %s", gz.code, gz.stderr)
	}

	ok(t, root, "commit", "-m", "marked", "c", "committed")
	if r := ok(t, root, "run", "--rm", "committed", "sh", "-c", "cat /marker; ls /bin/ls 2>&1 || true"); !strings.HasPrefix(r.stdout, "changed\n") || !strings.Contains(r.stdout, "No such file") {
		t.Fatalf("run of the committed image: %q", r.stdout)
	}
	if r := ok(t, root, "history", "-q", "committed"); strings.Count(r.stdout, "\n") < 2 {
		t.Errorf("committed image's history is not its base's plus one: %q", r.stdout)
	}
	if r := kiln(t, root, nil, "commit", "-c", "CMD [\"sh\"]", "c", "x"); r.code != 2 || !strings.Contains(r.stderr, "--change is not supported yet") {
		t.Errorf("commit -c: exit %d %s", r.code, r.stderr)
	}
	if r := kiln(t, root, nil, "import", filepath.Join(t.TempDir(), "missing.tar")); r.code != 1 {
		t.Errorf("import of a missing file: exit %d", r.code)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
