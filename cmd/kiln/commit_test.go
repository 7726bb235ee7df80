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
	if r := kiln(t, root, nil, "import", filepath.Join(t.TempDir(), "missing.tar")); r.code != 1 {
		t.Errorf("import of a missing file: exit %d", r.code)
	}

	// import -c sets the config of an image that has none.
	ok(t, root, "import", "-c", `CMD ["/bin/busybox", "cat", "/marker"]`, "--change", "ENV GREETING=hi", tarPath, "imported:cmd")
	if r := ok(t, root, "run", "--rm", "imported:cmd"); r.stdout != "changed\n" {
		t.Errorf("run of an image imported with -c CMD: %q", r.stdout)
	}
	if r := ok(t, root, "image", "inspect", "--format", "{{json .Config.Env}}", "imported:cmd"); r.stdout != `["GREETING=hi"]`+"\n" {
		t.Errorf("import -c ENV: %s", r.stdout)
	}
}

// commit -c applies Dockerfile instructions to the new image's config as a build does: values
// expand against the config's ENV, ENTRYPOINT drops an inherited CMD, and only docker's
// config instructions are accepted.
func TestCommitChange(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	ok(t, root, "run", "--name", "c", "busybox", "true")
	ok(t, root, "commit",
		"-c", "ENV A=one", "-c", "ENV B=${A}-two PATH=/opt:$PATH",
		"-c", `CMD ["sh", "-c", "echo $A $B; pwd; id -u"]`,
		"-c", "WORKDIR /srv", "-c", "WORKDIR sub",
		"-c", "USER 7", "-c", "EXPOSE 80 53/udp", "-c", "LABEL owner=$A", "-c", "VOLUME /data",
		"-c", "STOPSIGNAL SIGINT", "-c", "HEALTHCHECK --interval=5s CMD true", "-c", "ONBUILD RUN echo hi",
		"c", "changed:1")
	if r := ok(t, root, "run", "--rm", "changed:1"); r.stdout != "one one-two\n/srv/sub\n7\n" {
		t.Errorf("run of the changed image: %q", r.stdout)
	}
	for format, want := range map[string]string{
		"{{json .Config.Env}}":          `["PATH=/opt:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","A=one","B=one-two"]`,
		"{{json .Config.ExposedPorts}}": `{"53/udp":{},"80/tcp":{}}`,
		"{{json .Config.Labels}}":       `{"owner":"one"}`,
		"{{json .Config.Volumes}}":      `{"/data":{}}`,
		"{{.Config.StopSignal}}":        "SIGINT",
		"{{json .Config.Healthcheck}}":  `{"Interval":5000000000,"Test":["CMD-SHELL","true"]}`,
		"{{json .Config.OnBuild}}":      `["RUN echo hi"]`,
		"{{.Config.User}}":              "7",
	} {
		if r := ok(t, root, "image", "inspect", "--format", format, "changed:1"); strings.TrimSpace(r.stdout) != want {
			t.Errorf("commit -c: %s is %s, want %s", format, strings.TrimSpace(r.stdout), want)
		}
	}
	// ENTRYPOINT resets the CMD the config had; one set among the changes stays.
	ok(t, root, "commit", "-c", `CMD ["echo", "inherited"]`, "c", "changed:2")
	ok(t, root, "commit", "-c", `ENTRYPOINT ["echo", "entry"]`, "c", "changed:3")
	if r := ok(t, root, "image", "inspect", "--format", "{{json .Config.Cmd}} {{json .Config.Entrypoint}}", "changed:3"); r.stdout != `null ["echo","entry"]`+"\n" {
		t.Errorf("ENTRYPOINT over the image's CMD: %s", r.stdout)
	}
	ok(t, root, "commit", "-c", "CMD kept", "-c", "ENTRYPOINT echo", "c", "changed:4")
	if r := ok(t, root, "image", "inspect", "--format", "{{json .Config.Cmd}}", "changed:4"); r.stdout != `["/bin/sh","-c","kept"]`+"\n" {
		t.Errorf("CMD then ENTRYPOINT: %s", r.stdout)
	}

	for _, bad := range []struct{ change, msg string }{
		{"RUN touch /x", "RUN is not a valid change command"},
		{"FROM busybox", "FROM is not a valid change command"},
		{"COPY a b", "COPY is not a valid change command"},
		{"EXPOSE 99999", `invalid port "99999"`},
		{"ENV", "ENV requires at least one argument"},
	} {
		if r := kiln(t, root, nil, "commit", "-c", bad.change, "c", "bad"); r.code != 1 || !strings.Contains(r.stderr, bad.msg) {
			t.Errorf("commit -c %q: exit %d %s", bad.change, r.code, r.stderr)
		}
	}
	if r := ok(t, root, "images", "-q", "bad"); r.stdout != "" {
		t.Errorf("a refused change left an image: %q", r.stdout)
	}
}

// commit writes the container's config, not its image's: what run set (command, entrypoint,
// -e, -w, -u, --label, --expose, --stop-signal, --health-cmd) is what the new image runs, as
// docker commits, and -c applies over it.
func TestCommitKeepsRunConfig(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	ok(t, root, "run", "--name", "c", "-e", "A=one", "-w", "/tmp", "-u", "0:0", "--label", "tier=web",
		"--expose", "8080", "--stop-signal", "SIGUSR1", "--health-cmd", "true",
		"busybox", "sh", "-c", `echo "$A $(pwd)"`)
	ok(t, root, "commit", "c", "snap:1")
	if r := ok(t, root, "run", "--rm", "snap:1"); r.stdout != "one /tmp\n" {
		t.Errorf("run of the committed image: %q, want the container's command, env and workdir", r.stdout)
	}
	for format, want := range map[string]string{
		"{{json .Config.Cmd}}":          `["sh","-c","echo \"$A $(pwd)\""]`,
		"{{json .Config.Entrypoint}}":   "null",
		"{{json .Config.Env}}":          `["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","A=one"]`,
		"{{.Config.WorkingDir}}":        "/tmp",
		"{{.Config.User}}":              "0:0",
		"{{json .Config.Labels}}":       `{"tier":"web"}`,
		"{{json .Config.ExposedPorts}}": `{"8080/tcp":{}}`,
		"{{.Config.StopSignal}}":        "SIGUSR1",
		"{{json .Config.Healthcheck}}":  `{"Test":["CMD-SHELL","true"]}`,
	} {
		if r := ok(t, root, "image", "inspect", "--format", format, "snap:1"); strings.TrimSpace(r.stdout) != want {
			t.Errorf("commit: %s is %s, want %s", format, strings.TrimSpace(r.stdout), want)
		}
	}
	ok(t, root, "commit", "-c", "ENV A=two", "c", "snap:2")
	if r := ok(t, root, "run", "--rm", "snap:2"); r.stdout != "two /tmp\n" {
		t.Errorf("commit -c over the container's config: %q", r.stdout)
	}
	// --entrypoint replaces ENTRYPOINT and the arguments become CMD.
	ok(t, root, "run", "--name", "e", "--entrypoint", "echo", "busybox", "from", "run")
	ok(t, root, "commit", "e", "snap:3")
	if r := ok(t, root, "image", "inspect", "--format", "{{json .Config.Entrypoint}} {{json .Config.Cmd}}", "snap:3"); r.stdout != `["echo"] ["from","run"]`+"\n" {
		t.Errorf("commit of an --entrypoint container: %s", r.stdout)
	}
	if r := ok(t, root, "run", "--rm", "snap:3", "again"); r.stdout != "again\n" {
		t.Errorf("run of its image with a command: %q", r.stdout)
	}
}

// commit pauses a running container while it reads its changes (docker's -p, on by default) and
// thaws it after; a paused container stays paused, and --pause=false leaves it running.
func TestCommitPause(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	ok(t, root, "run", "-d", "--name", "p", "busybox", "sh", "-c", "echo x > /made; sleep 60")
	pid := inspectOne(t, root, "p").State.Pid
	ok(t, root, "commit", "p", "live:1")
	if st := inspectOne(t, root, "p").State; st.Status != "running" || frozen(t, pid) {
		t.Errorf("after commit: status %s, frozen %v", st.Status, frozen(t, pid))
	}
	ok(t, root, "commit", "--pause=false", "p", "live:2")
	ok(t, root, "pause", "p")
	ok(t, root, "commit", "-p", "p", "live:3")
	if st := inspectOne(t, root, "p").State; st.Status != "paused" || !frozen(t, pid) {
		t.Errorf("commit of a paused container: status %s, frozen %v", st.Status, frozen(t, pid))
	}
	ok(t, root, "unpause", "p")
	for _, img := range []string{"live:1", "live:2", "live:3"} {
		if r := ok(t, root, "run", "--rm", img, "cat", "/made"); r.stdout != "x\n" {
			t.Errorf("run %s: %q", img, r.stdout)
		}
	}
	ok(t, root, "rm", "-f", "p")
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// commit without a REPOSITORY makes a dangling image, as docker's: `images` lists it as <none>
// (and -f dangling=true), the store keeps it until `image prune` or `rmi ID`, and `tag` names it.
func TestCommitUntagged(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	ok(t, root, "run", "--name", "c", "busybox", "sh", "-c", "echo changed > /marker")
	commit := func() (id, short string) {
		t.Helper()
		id = strings.TrimSpace(ok(t, root, "commit", "c").stdout)
		if !strings.HasPrefix(id, "sha256:") {
			t.Fatalf("commit printed %q", id)
		}
		return id, id[7:19]
	}
	images := func(args ...string) string {
		t.Helper()
		return ok(t, root, append([]string{"images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"}, args...)...).stdout
	}
	id, short := commit()
	if got, want := images(), "busybox:latest "; !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "\n<none>:<none> "+short+"\n") {
		t.Fatalf("images after an untagged commit:\n%s", got)
	}
	if got := images("-f", "dangling=true"); got != "<none>:<none> "+short+"\n" {
		t.Errorf("images -f dangling=true:\n%s", got)
	}
	if got := images("-f", "dangling=false"); strings.Contains(got, short) || !strings.Contains(got, "busybox:latest") {
		t.Errorf("images -f dangling=false:\n%s", got)
	}
	if r := ok(t, root, "images"); !strings.Contains(r.stdout, "\n<none>   ") || !strings.Contains(r.stdout, short) {
		t.Errorf("images table:\n%s", r.stdout)
	}
	// GC without an image prune keeps it: it is a root like a tag.
	ok(t, root, "builder", "prune", "-a", "-f")
	if r := ok(t, root, "run", "--rm", short, "cat", "/marker"); r.stdout != "changed\n" {
		t.Fatalf("run of the dangling image by ID: %q", r.stdout)
	}
	if r := ok(t, root, "image", "inspect", "--format", "{{.Id}} {{len .RepoTags}}", short); r.stdout != id+" 0\n" {
		t.Errorf("inspect of the dangling image: %q", r.stdout)
	}
	if r := ok(t, root, "image", "prune", "-f"); !strings.Contains(r.stdout, "Deleted Images:\ndeleted: "+id+"\n") {
		t.Errorf("image prune:\n%s", r.stdout)
	}
	if got := images(); strings.Contains(got, "<none>") {
		t.Errorf("images after image prune:\n%s", got)
	}
	if r := kiln(t, root, nil, "image", "inspect", short); r.code != 1 {
		t.Errorf("inspect of the pruned image: exit %d %s", r.code, r.stderr)
	}

	id, short = commit()
	if r := ok(t, root, "rmi", short); r.stdout != "Deleted: "+id+"\n" {
		t.Errorf("rmi of the dangling image: %q", r.stdout)
	}
	if got := images("-f", "dangling=true"); got != "" {
		t.Errorf("images after rmi:\n%s", got)
	}

	_, short = commit()
	ok(t, root, "tag", short, "named:1")
	if got := images(); strings.Contains(got, "<none>") || !strings.Contains(got, "named:1 "+short+"\n") {
		t.Errorf("images after tagging the dangling image:\n%s", got)
	}

	// An archive without a name loads as a dangling image too.
	id, short = commit()
	archive := filepath.Join(t.TempDir(), "img.tar")
	ok(t, root, "save", "-o", archive, short)
	ok(t, root, "rmi", short)
	if r := ok(t, root, "load", "-i", archive); r.stdout != "Loaded image ID: "+id+"\n" {
		t.Errorf("load: %q", r.stdout)
	}
	if got := images("-f", "dangling=true"); got != "<none>:<none> "+short+"\n" {
		t.Errorf("images after loading an unnamed archive:\n%s", got)
	}
	ok(t, root, "rmi", short)

	// So does a build without -t; building it again with -t names it.
	ctx := t.TempDir()
	writeTree(t, ctx, map[string]string{"Dockerfile": "FROM busybox\nRUN echo unnamed > /u\n"})
	built := strings.TrimSpace(ok(t, root, "build", "-q", ctx).stdout)
	if got := images("-f", "dangling=true"); got != "<none>:<none> "+built[7:19]+"\n" {
		t.Errorf("images after a build without -t (%s):\n%s", built, got)
	}
	ok(t, root, "build", "-q", "-t", "now-named", ctx)
	if got := images("-f", "dangling=true"); got != "" {
		t.Errorf("after a build with -t of the same image:\n%s", got)
	}
	// A rebuild that moves the tag leaves the old image as <none>, as docker's; a no-op
	// rebuild leaves nothing, and image prune removes it.
	ok(t, root, "build", "-q", "-t", "now-named", ctx)
	writeTree(t, ctx, map[string]string{"Dockerfile": "FROM busybox\nRUN echo changed > /u\n"})
	ok(t, root, "build", "-q", "-t", "now-named", ctx)
	if got := images("-f", "dangling=true"); got != "<none>:<none> "+built[7:19]+"\n" {
		t.Errorf("after a rebuild moved the tag:\n%s", got)
	}
	ok(t, root, "tag", "busybox", "now-named") // kiln tag moves it the same way
	if got := images("-f", "dangling=true"); strings.Count(got, "\n") != 2 {
		t.Errorf("after kiln tag moved the tag:\n%s", got)
	}
	ok(t, root, "image", "prune", "-f")
	if got := images("-f", "dangling=true"); got != "" {
		t.Errorf("after image prune:\n%s", got)
	}
	ok(t, root, "rm", "c")
}
