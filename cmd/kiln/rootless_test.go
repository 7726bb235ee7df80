package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/internal/testimage"
)

// rootlessUser is the unprivileged user the rootless tests run kiln as; useradd gives it
// subordinate id ranges.
const rootlessUser = "kiln-rootless-test"

// rootless runs the test binary as kiln under rootlessUser, with its own home (the default
// store) and runtime dir.
type rootless struct {
	t              *testing.T
	bin, home, xdg string
	uid, gid       int
	extraEnv       []string
	tun            string // a 0666 /dev/net/tun node bound over the host's for the user's commands
}

// newRootless creates the user (idempotent), a 0755 copy of the test binary it can execute and
// a fresh home; it skips where the kernel lacks unprivileged user namespaces.
func newRootless(t *testing.T) *rootless { return newRootlessUser(t, rootlessUser) }

// newRootlessUser is newRootless for user name, created with the extra useradd args.
func newRootlessUser(t *testing.T, name string, useradd ...string) *rootless {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create the unprivileged test user")
	}
	testimage.RequireBusybox(t)
	for _, tool := range []string{"useradd", "setpriv", "newuidmap", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("rootless tests need %s (packages passwd, util-linux, uidmap)", tool)
		}
	}
	u, err := user.Lookup(name)
	if err != nil {
		if out, err := exec.Command("useradd", append(useradd, "--no-create-home", name)...).CombinedOutput(); err != nil && !bytes.Contains(out, []byte("already exists")) {
			t.Fatalf("useradd: %v: %s", err, out)
		}
		if u, err = user.Lookup(name); err != nil {
			t.Fatal(err)
		}
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	top := t.TempDir()
	os.Chmod(filepath.Dir(top), 0o755) // the test's temp root, which holds the contexts too
	os.Chmod(top, 0o755)
	r := &rootless{t: t, bin: filepath.Join(top, "kiln"), home: filepath.Join(top, "home"), xdg: filepath.Join(top, "xdg"), uid: uid, gid: gid}
	copyExecutable(t, os.Args[0], r.bin)
	for _, d := range []string{r.home, r.xdg} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		os.Chown(d, uid, gid)
	}
	if out, err := r.command("unshare", "--user", "--map-root-user", "true").CombinedOutput(); err != nil {
		t.Skipf("the kernel refuses unprivileged user namespaces here: %v: %s", err, out)
	}
	t.Cleanup(r.killPause)
	return r
}

func copyExecutable(t *testing.T, from, to string) {
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o755); err != nil {
		t.Fatal(err)
	}
}

// command is argv run as the user in a clean environment.
func (r *rootless) command(argv ...string) *exec.Cmd {
	args := append([]string{fmt.Sprintf("--reuid=%d", r.uid), fmt.Sprintf("--regid=%d", r.gid), "--init-groups",
		"env", "-i", "HOME=" + r.home, "XDG_RUNTIME_DIR=" + r.xdg, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"SOURCE_DATE_EPOCH=" + os.Getenv("SOURCE_DATE_EPOCH")}, r.extraEnv...)
	cmd := exec.Command("setpriv", append(args, argv...)...)
	if r.tun != "" {
		cmd = exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "--", "sh", "-c",
			`mount --bind "$0" /dev/net/tun && exec "$@"`, r.tun, "setpriv"}, append(args, argv...)...)...)
	}
	cmd.Dir = r.home
	return cmd
}

// openTun gives the user's commands (and the pause process the next one starts) a /dev/net/tun
// they may open, as Debian's usual 0666 node, where this host's is closed to users: the same
// device, bound over the host's in a mount namespace of their own. It skips where that fails.
func (r *rootless) openTun() {
	r.t.Helper()
	if fi, err := os.Stat("/dev/net/tun"); err == nil && fi.Mode().Perm()&0o006 == 0o006 {
		return
	}
	node := filepath.Join(r.t.TempDir(), "tun")
	if err := syscall.Mknod(node, syscall.S_IFCHR|0o666, 10<<8|200); err != nil {
		r.t.Skipf("cannot make a tun node for the user-mode network: %v", err)
	}
	os.Chmod(node, 0o666)
	os.Chmod(filepath.Dir(node), 0o755)
	r.tun = node
	if out, err := r.command("true").CombinedOutput(); err != nil {
		r.t.Skipf("cannot bind a tun node over /dev/net/tun: %v: %s", err, out)
	}
}

// kiln runs kiln as the user.
func (r *rootless) kiln(args ...string) result {
	r.t.Helper()
	return runKiln(r.t, r.command(append([]string{execEnv + "=1", r.bin}, args...)...), args)
}

func (r *rootless) ok(args ...string) result {
	r.t.Helper()
	res := r.kiln(args...)
	if res.code != 0 {
		r.t.Fatalf("rootless kiln %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
	}
	return res
}

// killPause ends the user namespace's pause process this test's runtime dir started.
func (r *rootless) killPause() {
	data, err := os.ReadFile(filepath.Join(r.xdg, "kiln", "pause.pid"))
	if err != nil {
		return
	}
	if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// busyboxContext is a Buildfile context with a base from the host's static busybox, and a
// second step that leaves files owned by several uids (subordinate ids on disk).
func busyboxContext(t *testing.T, dir string) {
	t.Helper()
	os.Chmod(dir, 0o755)
	copyExecutable(t, testimage.BusyboxPath, filepath.Join(dir, "busybox"))
	writeTree(t, dir, map[string]string{
		"Buildfile": "FROM scratch\nCOPY busybox /bin/busybox\n" +
			"RUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox mkdir -p /tmp /etc /usr/bin && /bin/busybox --install -s /bin\"]\n" +
			"RUN echo x > /owned && chown 1234:5678 /owned && mkdir /nobody && chown 65534:65534 /nobody && touch /usr/bin/old\n" +
			// An opaque directory: the next step must not see /usr/bin/old through it.
			"RUN rm -rf /usr && mkdir -p /usr/new\nRUN ls /usr > /usr.list\n" +
			"CMD [\"sh\"]\n",
	})
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			os.Chmod(p, fi.Mode()|0o044)
		}
		return nil
	})
}

func TestRootlessBuildRunExec(t *testing.T) {
	r := newRootless(t)
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	ctxDir := t.TempDir()
	busyboxContext(t, ctxDir)
	r.openTun() // RUN steps on the user-mode network: the image is the root-built one all the same

	b := r.ok("--debug", "build", "--progress=plain", "-t", "bb", "--iidfile", filepath.Join(r.home, "iid"), ctxDir)
	if !strings.Contains(b.stderr, "isolation: rootless") {
		t.Errorf("--debug does not say the isolation:\n%s", b.stderr)
	}
	if _, err := os.Stat(filepath.Join(r.home, ".local", "share", "kiln", "index.json")); err != nil {
		t.Errorf("the default rootless store is not ~/.local/share/kiln: %v", err)
	}
	// The same build as root, with the same SOURCE_DATE_EPOCH: the same image, byte for byte.
	rootStore := t.TempDir()
	ok(t, rootStore, "build", "--progress=plain", "-t", "bb", "--iidfile", filepath.Join(rootStore, "iid"), ctxDir)
	rootless, _ := os.ReadFile(filepath.Join(r.home, "iid"))
	rooted, _ := os.ReadFile(filepath.Join(rootStore, "iid"))
	if len(rootless) == 0 || !bytes.Equal(rootless, rooted) {
		t.Errorf("rootless image %q, root-built image %q: want the same", rootless, rooted)
	}

	res := r.ok("run", "--rm", "--hostname", "box", "bb", "sh", "-c",
		"echo $$; hostname; stat -c %u:%g /owned /nobody; cat /usr.list; ls /home 2>&1; ls /etc/shadow 2>&1; true")
	want := "1\nbox\n1234:5678\n65534:65534\nnew\n"
	if !strings.HasPrefix(res.stdout, want) || !strings.Contains(res.stdout, "No such file") {
		t.Errorf("run: %q, want pid 1, the hostname, the image's owners and no host files", res.stdout)
	}
	if res := r.kiln("run", "--rm", "--network", "none", "bb", "sh", "-c", "exit 7"); res.code != 7 {
		t.Errorf("exit 7: got %d\n%s", res.code, res.stderr)
	}
	if res := r.kiln("run", "--rm", "bb", "no-such-command"); res.code != 127 {
		t.Errorf("missing command: got %d\n%s", res.code, res.stderr)
	}

	id := strings.TrimSpace(r.ok("run", "-d", "--name", "web", "bb", "sleep", "300").stdout)
	if id == "" {
		t.Fatal("run -d printed no id")
	}
	if res := r.ok("exec", "web", "sh", "-c", "cat /proc/1/cmdline; echo; echo $$"); !strings.HasPrefix(res.stdout, "sleep\x00300\x00\n") {
		t.Errorf("exec: %q", res.stdout)
	}
	if ps := r.ok("ps").stdout; !strings.Contains(ps, "web") {
		t.Errorf("ps does not list web:\n%s", ps)
	}
	r.ok("stop", "-t", "1", "web")
	r.ok("rm", "web")
	if ps := r.ok("ps", "-a").stdout; strings.Contains(ps, "web") {
		t.Errorf("ps -a still lists web:\n%s", ps)
	}
}

func TestRootlessRefusals(t *testing.T) {
	r := newRootless(t)
	store := filepath.Join(r.home, ".local", "share", "kiln")
	cases := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"oci as non-root", nil, []string{"--isolation=oci", "images"}, "isolation oci needs root"},
		{"no newuidmap", []string{"PATH=/nonexistent"}, []string{"images"}, "install the uidmap package"},
		{"runtime dir not writable", []string{"XDG_RUNTIME_DIR=/proc"}, []string{"images"}, "XDG_RUNTIME_DIR"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r.t, r.extraEnv = t, c.env
			res := r.kiln(c.args...)
			if res.code != 1 || !strings.Contains(res.stderr, c.want) {
				t.Errorf("exit %d, want 1 and %q:\n%s", res.code, c.want, res.stderr)
			}
			if _, err := os.Stat(store); err == nil {
				t.Errorf("the store %s was created", store)
			}
		})
	}
}

func TestRootlessLimitsRefused(t *testing.T) {
	r := newRootless(t)
	ctxDir := t.TempDir()
	busyboxContext(t, ctxDir)
	r.ok("build", "-t", "bb", ctxDir)
	// The test user's cgroup is this test's (root's), never a subtree delegated to it: on a v1
	// host the refusal names v1 and the boot option, on v2 the missing delegation.
	var st unix.Statfs_t
	v1 := unix.Statfs("/sys/fs/cgroup", &st) != nil || st.Type != unix.CGROUP2_SUPER_MAGIC
	const v1Why = " cgroup v2 when kiln runs without root: this host uses cgroup v1 (boot with systemd.unified_cgroup_hierarchy=1)"
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--memory", "16m"}, "--memory needs"},
		{[]string{"--cpus", "0.5", "--pids-limit", "20"}, "--cpus and --pids-limit need"},
	} {
		want := tc.want
		if v1 {
			want += v1Why
		}
		args := append(append([]string{"run", "--rm"}, tc.flags...), "bb", "true")
		if res := r.kiln(args...); res.code != 125 || !strings.Contains(res.stderr, want) || !strings.Contains(res.stderr, "cgroup v2") {
			t.Errorf("rootless kiln %s: exit %d, want 125 and %q:\n%s", strings.Join(args, " "), res.code, want, res.stderr)
		}
	}
}

// Without subordinate ids kiln maps only the user (a warning says so and how to fix it): images
// owned by root build and run; one with other owners fails to unpack, naming the fix.
func TestRootlessWithoutSubordinateIDs(t *testing.T) {
	r := newRootlessUser(t, rootlessUser+"-nosub", "-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0")
	ctxDir := t.TempDir()
	busyboxContext(t, ctxDir)
	writeTree(t, ctxDir, map[string]string{"Buildfile": "FROM scratch\nCOPY busybox /bin/busybox\n" +
		"RUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox mkdir -p /tmp /etc /usr/bin && /bin/busybox --install -s /bin\"]\n"})
	b := r.ok("build", "-t", "bb", ctxDir)
	if !strings.Contains(b.stderr, "no subordinate ids") || !strings.Contains(b.stderr, "usermod --add-subuids") {
		t.Errorf("no warning naming the missing subordinate ids:\n%s", b.stderr)
	}
	if res := r.ok("run", "--rm", "bb", "id", "-u"); strings.TrimSpace(res.stdout) != "0" {
		t.Errorf("id -u: %q", res.stdout)
	}

	rootStore := t.TempDir()
	busyboxContext(t, ctxDir) // the context with files owned by 1234 and 65534
	ok(t, rootStore, "build", "-t", "multi", ctxDir)
	tarball := filepath.Join(r.home, "multi.tar")
	ok(t, rootStore, "save", "-o", tarball, "multi")
	os.Chmod(tarball, 0o644)
	r.ok("load", "-i", tarball)
	res := r.kiln("run", "--rm", "multi", "true")
	if res.code == 0 || !strings.Contains(res.stderr, "/etc/subuid") {
		t.Errorf("an image with unmapped owners: exit %d, want a failure naming /etc/subuid:\n%s", res.code, res.stderr)
	}
}

// Rootless `kiln run` defaults to the user-mode network (slirp4netns) with -p on 127.0.0.1;
// where /dev/net/tun is closed to users it says so and uses the host network.
func TestRootlessNetwork(t *testing.T) {
	r := newRootless(t)
	ctxDir := t.TempDir()
	busyboxContext(t, ctxDir)
	r.ok("build", "-t", "bb", ctxDir)
	fi, err := os.Stat("/dev/net/tun")
	if err != nil || fi.Mode().Perm()&0o006 != 0o006 {
		res := r.ok("run", "--rm", "bb", "true")
		if !strings.Contains(res.stderr, "uses the host network") || !strings.Contains(res.stderr, "/dev/net/tun") {
			t.Errorf("no note on the host-network fallback:\n%s", res.stderr)
		}
		if res := r.kiln("run", "--rm", "--network", "slirp4netns", "bb", "true"); res.code == 0 || !strings.Contains(res.stderr, "chmod 0666 /dev/net/tun") {
			t.Errorf("--network slirp4netns without /dev/net/tun: exit %d:\n%s", res.code, res.stderr)
		}
		r.killPause() // the next pause process gets the tun node
		r.openTun()
	}
	port := strconv.Itoa(20000 + os.Getpid()%20000)
	r.ok("run", "-d", "--name", "web", "-p", "127.0.0.1:"+port+":80", "bb", "sh", "-c",
		"mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 80 -h /www")
	defer r.kiln("rm", "-f", "web")
	var last string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://127.0.0.1:" + port + "/")
		if err != nil {
			last = err.Error()
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if last = string(body); last == "hello\n" {
			return
		}
	}
	t.Errorf("published port answered %q, want hello", last)
}

// A rootless container has no cgroup of its own: pause, update and stats refuse, naming why,
// and never freeze, limit or report the user's whole session.
func TestRootlessCgroupVerbsRefused(t *testing.T) {
	r := newRootless(t)
	ctxDir := t.TempDir()
	busyboxContext(t, ctxDir)
	r.ok("build", "-t", "bb", ctxDir)
	r.ok("run", "-d", "--name", "web", "bb", "sleep", "300")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"pause", "web"}, "pause needs the container's own cgroup"},
		{[]string{"update", "--pids-limit", "5", "web"}, "update sets cgroup limits"},
		{[]string{"stats", "--no-stream", "web"}, "has no cgroup of its own to read stats from"},
	} {
		if res := r.kiln(c.args...); res.code != 1 || !strings.Contains(res.stderr, c.want) || !strings.Contains(res.stderr, "cgroup") {
			t.Errorf("rootless kiln %s: exit %d, want 1 and %q:\n%s", strings.Join(c.args, " "), res.code, c.want, res.stderr)
		}
	}
	if st := r.ok("ps", "--format", "{{.State}}").stdout; st != "running\n" {
		t.Errorf("after the refusals: %q", st)
	}
	r.ok("rm", "-f", "web")
}

// Rootless RUN steps of the default network get the user-mode network, as podman build: they
// reach the host's address through slirp4netns, but not the host's loopback (neither as
// 127.0.0.1, their own, nor as 10.0.2.2: host loopback is disabled, as podman); RUN
// --network=host shares the host's loopback and --network=none reaches nothing. Without a
// usable /dev/net/tun the build says it uses the host network.
func TestRootlessBuildNetwork(t *testing.T) {
	r := newRootless(t)
	hostIP := ""
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
			hostIP = n.IP.String()
			break
		}
	}
	if hostIP == "" {
		t.Skip("no non-loopback IPv4 address on this host to serve the build from")
	}
	ln, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	got := map[string]bool{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		got[req.URL.Path] = true
		mu.Unlock()
		fmt.Fprintln(w, "served", req.URL.Path)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)

	ctxDir := t.TempDir()
	busyboxContext(t, ctxDir)
	url := func(host, path string) string { return "http://" + host + ":" + port + "/" + path }
	writeTree(t, ctxDir, map[string]string{"Buildfile": "FROM scratch\nCOPY busybox /bin/busybox\n" +
		"RUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox mkdir -p /tmp /etc && /bin/busybox --install -s /bin\"]\n" +
		"RUN wget -q -O- " + url(hostIP, "user-mode") + " && ! wget -q -O- " + url("127.0.0.1", "loopback") +
		" && ! wget -q -O- " + url("10.0.2.2", "gateway") + "\n" +
		"RUN --network=host wget -q -O- " + url("127.0.0.1", "host-net") + "\n" +
		"RUN --network=none ! wget -q -O- " + url(hostIP, "none") + "\n"})
	os.Chmod(filepath.Join(ctxDir, "Buildfile"), 0o644)

	if fi, err := os.Stat("/dev/net/tun"); err != nil || fi.Mode().Perm()&0o006 != 0o006 {
		res := r.kiln("build", "--progress=plain", "--no-cache", ctxDir)
		if !strings.Contains(res.stderr, "each rootless RUN step on the default network uses the host network") || !strings.Contains(res.stderr, "/dev/net/tun") {
			t.Errorf("no note on the host-network fallback (exit %d):\n%s", res.code, res.stderr)
		}
		r.killPause() // the next pause process gets the tun node
		mu.Lock()
		clear(got)
		mu.Unlock()
	}
	r.openTun()
	b := r.kiln("build", "--progress=plain", "--no-cache", ctxDir)
	mu.Lock()
	defer mu.Unlock()
	if b.code != 0 {
		t.Fatalf("rootless build: exit %d (requests %v)\n%s", b.code, got, b.stderr)
	}
	if strings.Contains(b.stderr, "uses the host network") {
		t.Errorf("the build fell back to the host network:\n%s", b.stderr)
	}
	for path, want := range map[string]bool{"/user-mode": true, "/host-net": true, "/loopback": false, "/gateway": false, "/none": false} {
		if got[path] != want {
			t.Errorf("request %s reached the host: %v, want %v (all: %v)", path, got[path], want, got)
		}
	}
}
