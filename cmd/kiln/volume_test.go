package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// volumeNames is `kiln volume ls -q` with args, as a list.
func volumeNames(t *testing.T, root string, args ...string) []string {
	t.Helper()
	return strings.Fields(ok(t, root, append([]string{"volume", "ls", "-q"}, args...)...).stdout)
}

func TestVolumeVerbs(t *testing.T) {
	root := t.TempDir()
	if out := ok(t, root, "volume", "create", "--label", "tier=db", "data").stdout; out != "data\n" {
		t.Fatalf("volume create data: %q", out)
	}
	ok(t, root, "volume", "create", "data") // again: no error, as docker
	anon := strings.TrimSpace(ok(t, root, "volume", "create").stdout)
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(anon) {
		t.Fatalf("volume create without a name printed %q, want 64 hex", anon)
	}
	if got := volumeNames(t, root); !slices.Equal(got, []string{anon, "data"}) && !slices.Equal(got, []string{"data", anon}) {
		t.Errorf("ls -q: %v", got)
	}
	if got := volumeNames(t, root, "--filter", "label=tier=db"); !slices.Equal(got, []string{"data"}) {
		t.Errorf("ls --filter label=tier=db: %v", got)
	}
	if got := volumeNames(t, root, "--filter", "name=at", "--filter", "dangling=true"); !slices.Equal(got, []string{"data"}) {
		t.Errorf("ls --filter name=at --filter dangling=true: %v", got)
	}
	if got := volumeNames(t, root, "--filter", "dangling=false"); len(got) != 0 {
		t.Errorf("ls --filter dangling=false, no containers: %v", got)
	}
	table := ok(t, root, "volume", "ls").stdout
	if !regexp.MustCompile(`^DRIVER\s+VOLUME NAME\n`).MatchString(table) || !regexp.MustCompile(`\nlocal\s+data\n`).MatchString(table) {
		t.Errorf("ls table:\n%s", table)
	}
	if out := ok(t, root, "volume", "ls", "--filter", "name=data", "--format", "{{.Name}} {{.Driver}} {{.Labels}}").stdout; out != "data local tier=db\n" {
		t.Errorf("ls --format: %q", out)
	}
	var docs []volumeInspect
	if err := json.Unmarshal([]byte(ok(t, root, "volume", "inspect", "data").stdout), &docs); err != nil || len(docs) != 1 {
		t.Fatalf("inspect: %v %v", docs, err)
	}
	d := docs[0]
	if d.Name != "data" || d.Driver != "local" || d.Scope != "local" || d.Labels["tier"] != "db" || d.CreatedAt == "" {
		t.Errorf("inspect: %+v", d)
	}
	if fi, err := os.Stat(d.Mountpoint); err != nil || !fi.IsDir() || !strings.HasPrefix(d.Mountpoint, root) {
		t.Errorf("mountpoint %s: %v", d.Mountpoint, err)
	}
	if out := ok(t, root, "volume", "inspect", "-f", "{{.Name}} {{.Driver}}", "data").stdout; out != "data local\n" {
		t.Errorf("inspect -f: %q", out)
	}
	if out := ok(t, root, "inspect", "-f", "{{.Name}} {{.Scope}}", "data").stdout; out != "data local\n" {
		t.Errorf("kiln inspect of a volume: %q", out)
	}
	if r := kiln(t, root, nil, "volume", "inspect", "nope"); r.code != 1 || !strings.Contains(r.stderr, "no such volume") {
		t.Errorf("inspect missing: exit %d %s", r.code, r.stderr)
	}
	if r := kiln(t, root, nil, "volume", "create", "../x"); r.code == 0 || !strings.Contains(r.stderr, "invalid volume name") {
		t.Errorf("create ../x: exit %d %s", r.code, r.stderr)
	}
	if r := kiln(t, root, nil, "volume", "ls", "--filter", "bogus=1"); r.code != 2 {
		t.Errorf("ls --filter bogus: exit %d", r.code)
	}
	if r := kiln(t, root, nil, "volume", "rm", "nope"); r.code != 1 || !strings.Contains(r.stderr, "no such volume") {
		t.Errorf("rm missing: exit %d %s", r.code, r.stderr)
	}
	ok(t, root, "volume", "rm", "-f", "nope")
	// Without -a only anonymous volumes go (docker ≥ 23); one made by `volume create` is named.
	if out := ok(t, root, "volume", "prune", "-f").stdout; out != "Total reclaimed space: 0B\n" {
		t.Errorf("prune -f: %q", out)
	}
	if err := os.WriteFile(filepath.Join(d.Mountpoint, "f"), []byte("12345"), 0o644); err != nil {
		t.Fatal(err)
	}
	if df := ok(t, root, "system", "df").stdout; !regexp.MustCompile(`\nLocal Volumes\s+2\s+\d+(\.\d+)?[kK]?B\n`).MatchString(df) {
		t.Errorf("system df:\n%s", df)
	}
	// Volumes are roots: no collection of the image store touches them.
	ok(t, root, "prune", "--all")
	ok(t, root, "system", "prune", "-a", "-f")
	if got := volumeNames(t, root); len(got) != 2 {
		t.Errorf("prune --all and system prune -a removed volumes: %v", got)
	}
	out := ok(t, root, "volume", "prune", "-a", "-f").stdout
	if !strings.HasPrefix(out, "Deleted Volumes:\n") || !strings.Contains(out, "\ndata\n") || !strings.Contains(out, anon+"\n") {
		t.Errorf("prune -a -f: %q", out)
	}
	if got := volumeNames(t, root); len(got) != 0 {
		t.Errorf("after prune -a: %v", got)
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "volumes")); len(ents) != 0 {
		t.Errorf("volumes/ holds %d entries after prune -a", len(ents))
	}
}

// appWithContent builds an image whose /seed has content of its own owners and modes, and a
// VOLUME /anon with a file.
func appWithContent(t *testing.T) string {
	t.Helper()
	root, ctxDir := busyboxRoot(t), t.TempDir()
	writeTree(t, ctxDir, map[string]string{
		"Buildfile": "FROM busybox\n" +
			"RUN mkdir -p /seed /anon && echo from-image > /seed/f && chown 1234:5678 /seed/f && chmod 640 /seed/f && chown 42:43 /seed && chmod 750 /seed && echo a > /anon/a && ln -s ../../../../etc /hostetc\n" +
			"VOLUME /anon\n",
	})
	ok(t, root, "build", "--progress=plain", "-t", "app", ctxDir)
	return root
}

func TestVolumeRun(t *testing.T) {
	requireContainers(t)
	root := appWithContent(t)
	// First use: the empty volume gets the image's /seed, owners and modes kept.
	r := ok(t, root, "run", "--rm", "-v", "data:/seed", "app", "sh", "-c", "cat /seed/f; stat -c '%u:%g %a' /seed /seed/f; echo more > /seed/g")
	if r.stdout != "from-image\n42:43 750\n1234:5678 640\n" {
		t.Errorf("copy-up: %q", r.stdout)
	}
	if got := volumeNames(t, root); !slices.Equal(got, []string{"data"}) {
		t.Errorf("run -v data:/seed --rm: volumes %v, want [data] (a named volume outlives --rm)", got)
	}
	// Second use: the volume's own data, nothing copied over it.
	if r := ok(t, root, "run", "--rm", "-v", "data:/seed", "app", "sh", "-c", "rm /seed/f; cat /seed/g"); r.stdout != "more\n" {
		t.Errorf("second run: %q", r.stdout)
	}
	if r := ok(t, root, "run", "--rm", "--mount", "type=volume,source=data,target=/seed", "app", "ls", "/seed"); r.stdout != "g\n" {
		t.Errorf("third run (f removed, no copy-up into a volume with data): %q", r.stdout)
	}
	if r := ok(t, root, "run", "--rm", "--mount", "type=volume,src=empty,dst=/seed,volume-nocopy", "app", "ls", "-A", "/seed"); r.stdout != "" {
		t.Errorf("volume-nocopy: %q", r.stdout)
	}
	// Mounts go parents first, whichever flag gave them: the volume does not hide the tmpfs in it.
	if r := ok(t, root, "run", "--rm", "--tmpfs", "/seed/t", "-v", "data:/seed", "app", "sh", "-c", "echo x > /seed/t/f && ls /seed/t && grep -c ' /seed/t tmpfs ' /proc/mounts"); r.stdout != "f\n1\n" {
		t.Errorf("--tmpfs /seed/t -v data:/seed: %q", r.stdout)
	}
	// An empty volume a running container mounts is filled in place: that container sees the copy.
	ok(t, root, "run", "-d", "--name", "live", "--mount", "type=volume,src=shared,dst=/seed,volume-nocopy", "app", "sleep", "60")
	ok(t, root, "run", "--rm", "-v", "shared:/seed", "app", "true")
	if r := ok(t, root, "exec", "live", "cat", "/seed/f"); r.stdout != "from-image\n" {
		t.Errorf("the running container's view of the volume filled after it started: %q", r.stdout)
	}
	ok(t, root, "rm", "-f", "live")
	// A container, even a stopped one, holds its volumes.
	id := strings.TrimSpace(ok(t, root, "create", "--name", "holder", "-v", "data:/seed", "app", "true").stdout)
	if r := kiln(t, root, nil, "volume", "rm", "data"); r.code != 1 || !strings.Contains(r.stderr, "remove data: volume is in use - ["+id+"]") {
		t.Errorf("rm in use: exit %d %s", r.code, r.stderr)
	}
	// The image's VOLUME /anon comes second, as an anonymous volume.
	if ms := inspectOne(t, root, "holder").Mounts; len(ms) != 2 || ms[0].Type != "volume" || ms[0].Name != "data" || ms[0].Destination != "/seed" || !ms[0].RW ||
		ms[1].Type != "volume" || ms[1].Destination != "/anon" || len(ms[1].Name) != 64 {
		t.Errorf("inspect holder mounts: %+v", ms)
	}
	if got := volumeNames(t, root, "--filter", "dangling=false"); !slices.Contains(got, "data") {
		t.Errorf("ls dangling=false: %v", got)
	}
	// --volumes-from shares the volume; :ro makes it read-only.
	r = kiln(t, root, nil, "run", "--rm", "--volumes-from", "holder:ro", "app", "sh", "-c", "cat /seed/g && touch /seed/x")
	if r.code == 0 || r.stdout != "more\n" || !strings.Contains(r.stderr, "Read-only file system") {
		t.Errorf("--volumes-from holder:ro: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := ok(t, root, "run", "--rm", "--volumes-from", "holder", "app", "sh", "-c", "touch /seed/x && ls /seed"); r.stdout != "g\nt\nx\n" {
		t.Errorf("--volumes-from holder: %q", r.stdout)
	}
	if r := kiln(t, root, nil, "run", "--rm", "--volumes-from", "nope", "app", "true"); r.code != 125 || !strings.Contains(r.stderr, "No such container: nope") {
		t.Errorf("--volumes-from nope: exit %d %s", r.code, r.stderr)
	}
	ok(t, root, "rm", "holder")
	ok(t, root, "volume", "rm", "data")
	// A target through a symlink out of the image is the image's path, never the host's.
	imagePasswd := ok(t, root, "run", "--rm", "app", "cat", "/etc/passwd").stdout
	ok(t, root, "run", "--rm", "-v", "etc:/hostetc", "app", "true")
	mp := strings.TrimSpace(ok(t, root, "volume", "inspect", "-f", "{{.Mountpoint}}", "etc").stdout)
	got, err := os.ReadFile(filepath.Join(mp, "passwd"))
	host, _ := os.ReadFile("/etc/passwd")
	if err != nil || string(got) != imagePasswd || string(got) == string(host) {
		t.Errorf("copy-up through /hostetc -> ../../../../etc: %q %v; want the image's /etc/passwd %q", got, err, imagePasswd)
	}
}

func TestAnonymousVolumes(t *testing.T) {
	requireContainers(t)
	root := appWithContent(t)
	// The image's VOLUME /anon is an anonymous volume filled from the image; --rm removes it.
	if r := ok(t, root, "run", "--rm", "app", "cat", "/anon/a"); r.stdout != "a\n" {
		t.Errorf("anonymous volume copy-up: %q", r.stdout)
	}
	if got := volumeNames(t, root); len(got) != 0 {
		t.Errorf("run --rm left volumes %v", got)
	}
	// The same for a detached --rm container, which its monitor removes.
	ok(t, root, "run", "-d", "--rm", "--name", "gone", "app", "true")
	waitFor(t, "the -d --rm container and its anonymous volume to go", func() bool {
		return kiln(t, root, nil, "container", "inspect", "gone").code != 0 && len(volumeNames(t, root)) == 0
	})
	ok(t, root, "run", "--name", "a1", "app", "true")
	ok(t, root, "run", "--name", "a2", "-v", "/scratch", "app", "true")
	if got := volumeNames(t, root); len(got) != 3 {
		t.Fatalf("two containers, three anonymous volumes: %v", got)
	}
	ok(t, root, "rm", "-v", "a2")
	if got := volumeNames(t, root); len(got) != 1 {
		t.Fatalf("rm -v a2 left %v, want a1's volume only", got)
	}
	ok(t, root, "volume", "create", "named")
	ok(t, root, "rm", "a1") // without -v its volume stays, unused
	ok(t, root, "system", "prune", "-f")
	if got := volumeNames(t, root); len(got) != 2 {
		t.Fatalf("plain system prune removed volumes: %v", got)
	}
	out := ok(t, root, "system", "prune", "-f", "--volumes").stdout
	if got := volumeNames(t, root); !slices.Equal(got, []string{"named"}) || !strings.HasPrefix(out, "Deleted Volumes:\n") {
		t.Errorf("system prune --volumes: left %v, printed %q", got, out)
	}
}

// Volumes of a rootless container live in the user's store; owners are the user namespace's.
func TestRootlessVolume(t *testing.T) {
	r := newRootless(t)
	ctxDir := t.TempDir()
	busyboxContext(t, ctxDir)
	r.ok("build", "--progress=plain", "-t", "bb", ctxDir)
	if res := r.ok("run", "--rm", "-v", "data:/nobody", "bb", "sh", "-c", "stat -c %u:%g /nobody; echo kept > /nobody/f; chown 1234 /nobody/f"); res.stdout != "65534:65534\n" {
		t.Errorf("rootless copy-up of /nobody's owner: %q", res.stdout)
	}
	if res := r.ok("run", "--rm", "-v", "data:/nobody", "bb", "stat", "-c", "%u %n", "/nobody/f"); res.stdout != "1234 /nobody/f\n" {
		t.Errorf("rootless volume second run: %q", res.stdout)
	}
	if got := strings.Fields(r.ok("volume", "ls", "-q").stdout); !slices.Equal(got, []string{"data"}) {
		t.Errorf("rootless volume ls: %v", got)
	}
	mp := strings.TrimSpace(r.ok("volume", "inspect", "-f", "{{.Mountpoint}}", "data").stdout)
	if !strings.HasPrefix(mp, filepath.Join(r.home, ".local", "share", "kiln", "volumes")) {
		t.Errorf("rootless mountpoint %s is not in the user's store", mp)
	}
	r.ok("volume", "rm", "data")
}
