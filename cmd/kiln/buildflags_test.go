package main

import (
	"archive/tar"
	"bytes"
	"crypto/ed25519"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/crypto/ssh"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/testgit"
	"github.com/kiln-build/kiln/internal/testimage"
)

// docker's build flags for RUN containers reach a real step: --network, --add-host,
// --ulimit, --shm-size; RUN --mount=type=secret,env= and --mount=type=ssh with --ssh ID=KEYFILE.
func TestBuildRunFlags(t *testing.T) {
	requireContainers(t)
	root, ctxDir := busyboxRoot(t), t.TempDir()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(key, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	writeTree(t, ctxDir, map[string]string{"Buildfile": "FROM busybox\n" +
		"RUN --mount=type=secret,id=tok,env=TOKEN --mount=type=ssh,id=k,required " +
		`grep db /etc/hosts > /hosts; ulimit -n > /nofile; df -k /dev/shm | tail -1 | awk '{print $2}' > /shm; ` +
		`ls /sys/class/net > /net; echo "$TOKEN" | md5sum | cut -c1-8 > /tok; [ -S "$SSH_AUTH_SOCK" ] && echo $SSH_AUTH_SOCK > /ssh` + "\n" +
		"CMD cat /hosts /nofile /shm /net /tok /ssh\n"})
	t.Setenv("KILN_TEST_TOK", "s3cr3t-v4l")
	ok(t, root, "build", "-q", "-t", "flags", "--network=none", "--add-host", "db:10.1.2.3", "--ulimit", "nofile=512:1024",
		"--shm-size", "32m", "--secret", "id=tok,env=KILN_TEST_TOK", "--ssh", "k="+key, ctxDir)
	r := ok(t, root, "run", "--rm", "flags")
	sum := md5.Sum([]byte("s3cr3t-v4l\n"))
	want := "10.1.2.3\tdb\n512\n32768\nlo\n" + hex.EncodeToString(sum[:])[:8] + "\n/run/buildkit/ssh_agent.0\n"
	if r.stdout != want {
		t.Errorf("inside the step:\n%q\nwant\n%q", r.stdout, want)
	}
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error { //nolint:errcheck // best effort
		if err == nil && d.Type().IsRegular() {
			if data, err := os.ReadFile(p); err == nil && bytes.Contains(data, []byte("s3cr3t-v4l")) {
				t.Errorf("%s holds the secret", p)
			}
		}
		return nil
	})
	for _, bad := range [][]string{{"--network", "bridge"}, {"--ulimit", "nofile"}, {"--add-host", "db"}, {"--shm-size", "lots"}, {"--ssh", "=x"}} {
		r := kiln(t, root, nil, append(append([]string{"build"}, bad...), ctxDir)...)
		if r.code != 2 || !strings.Contains(r.stderr, bad[0]) {
			t.Errorf("build %v: exit %d, %s", bad, r.code, r.stderr)
		}
	}
}

// `kiln build -` reads a tar context or a lone Buildfile from standard input, as docker.
func TestBuildStdinContext(t *testing.T) {
	testimage.RequireBusybox(t)
	root := busyboxRoot(t)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range map[string]string{"sub/Containerfile": "FROM busybox\nCOPY msg /msg\n", "msg": "hi"} {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(body))
	}
	tw.Close()
	if r := kiln(t, root, bytes.NewReader(buf.Bytes()), "build", "-q", "-t", "fromtar", "-f", "sub/Containerfile", "-"); r.code != 0 {
		t.Fatalf("build - < tar: exit %d\n%s", r.code, r.stderr)
	}
	if r := kiln(t, root, strings.NewReader("FROM busybox\nLABEL from=stdin\n"), "build", "-q", "-t", "fromfile", "-"); r.code != 0 {
		t.Fatalf("build - < Buildfile: exit %d\n%s", r.code, r.stderr)
	}
	if r := ok(t, root, "inspect", "--format", "{{.Config.Labels}}", "fromfile"); !strings.Contains(r.stdout, "from:stdin") {
		t.Errorf("labels %q", r.stdout)
	}
	r := kiln(t, root, strings.NewReader("FROM busybox\n"), "build", "-q", "-t", "annotated", "--annotation", "org.example.team=build", "-")
	if r.code != 0 {
		t.Fatalf("--annotation: exit %d\n%s", r.code, r.stderr)
	}
	st, err := cache.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	desc, _, err := st.Lookup("annotated")
	if err == nil {
		var im v1.Image
		if im, err = st.Image(desc.Digest); err == nil {
			var m *v1.Manifest
			if m, err = im.Manifest(); err == nil && m.Annotations["org.example.team"] != "build" {
				t.Errorf("manifest annotations %v", m.Annotations)
			}
		}
	}
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	extra := t.TempDir()
	writeTree(t, extra, map[string]string{"x": "named"})
	bf := "FROM base\nCOPY --from=extra x /x\n"
	if r := kiln(t, root, strings.NewReader(bf), "build", "-q", "-t", "named", "--build-context", "extra="+extra,
		"--build-context", "base=docker-image://busybox", "-"); r.code != 0 {
		t.Fatalf("--build-context: exit %d\n%s", r.code, r.stderr)
	}
	if r := kiln(t, root, nil, "build", "--build-context", "x", "-"); r.code != 2 || !strings.Contains(r.stderr, "--build-context") {
		t.Errorf("bad --build-context: exit %d %s", r.code, r.stderr)
	}
	if r := kiln(t, root, strings.NewReader("FROM busybox\n"), "build", "--annotation", "index:k=v", "-"); r.code != 2 {
		t.Errorf("--annotation index: exit %d %s", r.code, r.stderr)
	}
	if r := kiln(t, root, strings.NewReader("FROM busybox\n"), "build", "-f", "-", "-"); r.code == 0 || !strings.Contains(r.stderr, "both") {
		t.Errorf("-f - with -: exit %d %s", r.code, r.stderr)
	}
}

// `kiln build URL.git#ref:subdir -f FILE`: the context is cloned from a loopback server, -f is inside it.
func TestBuildGitContext(t *testing.T) {
	testimage.RequireBusybox(t)
	testgit.Require(t)
	root, work := busyboxRoot(t), t.TempDir()
	testgit.Git(t, work, "init", "-q", "-b", "main")
	writeTree(t, work, map[string]string{"app/build/Containerfile": "FROM busybox\nCOPY msg /msg\n", "app/msg": "v1"})
	testgit.Git(t, work, "add", ".")
	testgit.Git(t, work, "commit", "-q", "-m", "one")
	testgit.Git(t, work, "tag", "v1")
	url := testgit.Serve(t, work, "")
	ok(t, root, "build", "-q", "-t", "fromgit", "-f", "build/Containerfile", url+"#v1:app")
	if os.Geteuid() == 0 {
		if r := ok(t, root, "run", "--rm", "fromgit", "cat", "/msg"); r.stdout != "v1" {
			t.Errorf("/msg = %q", r.stdout)
		}
	}
	if r := kiln(t, root, nil, "build", url+"#nosuchref"); r.code != 1 || !strings.Contains(r.stderr, "nosuchref") {
		t.Errorf("unknown ref: exit %d %s", r.code, r.stderr)
	}
}
