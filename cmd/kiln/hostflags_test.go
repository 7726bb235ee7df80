package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/internal/testimage"
)

// webRoot is busyboxRoot plus "web": busybox with EXPOSE 80 and 53/udp and a label.
func webRoot(t *testing.T) string {
	t.Helper()
	root := busyboxRoot(t)
	img := testimage.Busybox(t)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg := cf.Config
	cfg.ExposedPorts = map[string]struct{}{"80/tcp": {}, "53/udp": {}}
	cfg.Labels = map[string]string{"from": "image", "tier": "image"}
	web, err := mutate.Config(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := cache.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	desc, err := s.WriteImage(context.Background(), web)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := cache.ParseName("web")
	if err := s.Tag(context.Background(), n, desc); err != nil {
		t.Fatal(err)
	}
	return root
}

// One container gets the process and /etc flags; each shows up where docker puts it.
func TestRunProcessAndEtcFlags(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	r := ok(t, root, "run", "--rm", "--ulimit", "nofile=1024:2048", "--ulimit", "nproc=500",
		"--add-host", "db:10.1.2.3", "--add-host", "gw:host-gateway", "--add-host", "v6=[2001:db8::1]",
		"--dns", "9.9.9.9", "--dns", "1.1.1.1", "--dns-search", "example.com", "--dns-option", "ndots:3",
		"--shm-size", "8m", "--sysctl", "net.ipv4.ip_forward=1", "--sysctl", "kernel.shmmni=1234",
		"--group-add", "1234", "--group-add", "daemon", "--workdir", "/tmp",
		"busybox", "sh", "-c", `echo nofile $(ulimit -n) $(ulimit -Hn); echo nproc $(ulimit -u); cat /etc/hosts; cat /etc/resolv.conf;
echo shm $(df -k /dev/shm | tail -1 | awk '{print $2}'); echo fwd $(cat /proc/sys/net/ipv4/ip_forward);
echo shmmni $(cat /proc/sys/kernel/shmmni); echo groups $(id -G); echo pwd $(pwd)`)
	out := r.stdout
	for _, want := range []string{"nofile 1024 2048\n", "nproc 500\n", "10.1.2.3\tdb\n", "10.89.0.1\tgw\n", "2001:db8::1\tv6\n",
		"nameserver 9.9.9.9\nnameserver 1.1.1.1\n", "search example.com\n", "options ndots:3\n", "shm 8192\n",
		"fwd 1\n", "shmmni 1234\n", "pwd /tmp\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "nameserver") != 2 {
		t.Errorf("--dns must replace the host's name servers:\n%s", out)
	}
	groups := regexp.MustCompile(`groups (.*)\n`).FindStringSubmatch(out)
	if groups == nil || !strings.Contains(" "+groups[1]+" ", " 1234 ") || !strings.Contains(" "+groups[1]+" ", " 1 ") {
		t.Errorf("--group-add 1234 and daemon (1 in the image's /etc/group): %q", groups)
	}
}

// --cpuset-cpus and --memory-swap reach the container's cgroup (v1 or v2, whichever the host has).
func TestRunCpusetAndMemorySwap(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	out := ok(t, root, "run", "--rm", "--cpuset-cpus", "0", "--memory", "64m", "--memory-swap", "96m", "busybox", "sh", "-c",
		`grep Cpus_allowed_list /proc/self/status; cat /sys/fs/cgroup/memory.swap.max /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes 2>/dev/null; true`).stdout
	if !strings.Contains(out, "Cpus_allowed_list:\t0\n") {
		t.Errorf("--cpuset-cpus 0: %s", out)
	}
	// v2 counts swap alone (96m-64m), v1 memory plus swap.
	if !strings.Contains(out, strconv.Itoa(32<<20)+"\n") && !strings.Contains(out, strconv.Itoa(96<<20)+"\n") {
		t.Errorf("--memory-swap 96m: %s", out)
	}
	if r := kiln(t, root, nil, "run", "--rm", "--cpuset-cpus", "4096", "busybox", "true"); r.code != 125 || !strings.Contains(r.stderr, "CPU 4096 is not available") {
		t.Errorf("--cpuset-cpus of a missing CPU: exit %d %s", r.code, r.stderr)
	}
}

// --init runs tini as pid 1: it forwards kiln stop's SIGTERM to a command that, as pid 1,
// would ignore it, and reaps orphans.
func TestRunInit(t *testing.T) {
	requireContainers(t)
	if _, err := os.Stat("/usr/bin/tini-static"); err != nil {
		t.Skip("tini not installed (apt-get install tini; make test-deps does this)")
	}
	root := busyboxRoot(t)
	out := ok(t, root, "run", "--rm", "--init", "busybox", "sh", "-c",
		`tr '\0' ' ' < /proc/1/cmdline`).stdout
	if !strings.HasPrefix(out, "/dev/init -- sh -c") {
		t.Errorf("pid 1 is not tini: %q", out)
	}
	// As docker's docker-init: a command that is not there is 127, said by tini.
	if r := kiln(t, root, nil, "run", "--rm", "--init", "busybox", "no-such-command"); r.code != 127 || !strings.Contains(r.stderr, "no-such-command") {
		t.Errorf("--init with a missing command: exit %d, %q", r.code, r.stderr)
	}
	// An orphan is reparented to pid 1: a plain sleep as pid 1 leaves it a zombie, tini reaps it.
	orphan := "sh -c 'sleep 0.1 & exec true'; exec sleep 300"
	t.Cleanup(func() { kiln(t, root, nil, "rm", "-f", "noinit", "sleeper") })
	ok(t, root, "run", "-d", "--name", "noinit", "busybox", "sh", "-c", orphan)
	ok(t, root, "run", "-d", "--init", "--name", "sleeper", "busybox", "sh", "-c", orphan)
	running := regexp.MustCompile(`(?m)^\S+\s+sleep 0\.1$`)
	for name, zombies := range map[string]bool{"noinit": true, "sleeper": false} {
		var ps string
		waitFor(t, "the orphan's end in "+name, func() bool {
			ps = kiln(t, root, nil, "exec", name, "ps", "-o", "stat,args").stdout
			return !running.MatchString(ps)
		})
		if z := regexp.MustCompile(`(?m)^Z`).MatchString(ps); z != zombies {
			t.Errorf("%s: zombie %v, want %v:\n%s", name, z, zombies, ps)
		}
	}
	ok(t, root, "rm", "-f", "noinit")
	ok(t, root, "stop", "-t", "60", "sleeper")
	if in := inspectOne(t, root, "sleeper"); in.State.ExitCode != 143 || !in.HostConfig.Init {
		t.Errorf("stopped --init container: exit %d (want 143: SIGTERM reached sleep), init %v", in.State.ExitCode, in.HostConfig.Init)
	}
}

// --stop-timeout is kiln stop's grace without -t; --stop-signal its signal.
func TestRunStopTimeoutAndSignal(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	ok(t, root, "run", "-d", "--stop-timeout", "1", "--name", "deaf", "busybox", "sleep", "300") // pid 1 ignores SIGTERM
	start := time.Now()
	ok(t, root, "stop", "deaf")
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("stop with --stop-timeout 1 took %v (the default is 10 s)", d)
	}
	if in := inspectOne(t, root, "deaf"); in.State.ExitCode != 137 || in.Config.StopTimeout == nil || *in.Config.StopTimeout != 1 {
		t.Errorf("deaf: exit %d, StopTimeout %v", in.State.ExitCode, in.Config.StopTimeout)
	}
	ok(t, root, "run", "-d", "--stop-signal", "SIGUSR1", "--name", "usr1", "busybox", "sh", "-c",
		`trap 'echo got-usr1; exit 3' USR1; while true; do sleep 0.1; done`)
	ok(t, root, "stop", "-t", "60", "usr1")
	if in := inspectOne(t, root, "usr1"); in.State.ExitCode != 3 || in.Config.StopSignal != "SIGUSR1" {
		t.Errorf("usr1: exit %d, StopSignal %q", in.State.ExitCode, in.Config.StopSignal)
	}
	if logs := ok(t, root, "logs", "usr1").stdout; logs != "got-usr1\n" {
		t.Errorf("usr1 logs: %q", logs)
	}
}

// --privileged: every capability, no seccomp, setuid works, no masked paths, writable /sys, the host's devices.
func TestRunPrivilegedAndDevice(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	out := ok(t, root, "run", "--rm", "--privileged", "busybox", "sh", "-c",
		`grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status; grep ' /sys ' /proc/mounts; grep -c kcore /proc/mounts; ls /dev`).stdout
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	bounding := regexp.MustCompile(`CapBnd:\t(\w+)`).FindSubmatch(status) // all kiln itself may grant
	if !strings.Contains(out, "Seccomp:\t0\n") || !strings.Contains(out, "NoNewPrivs:\t0\n") || bounding == nil || !strings.Contains(out, "CapEff:\t"+string(bounding[1])+"\n") ||
		!regexp.MustCompile(` /sys sysfs rw[, ]`).MatchString(out) || !strings.Contains(out, "\n0\n") {
		t.Errorf("--privileged:\n%s", out)
	}
	if _, err := os.Stat("/dev/kmsg"); err == nil && !strings.Contains(out, "kmsg\n") {
		t.Errorf("--privileged lacks the host's /dev/kmsg:\n%s", out)
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse to give containers")
	}
	// /dev/fuse is not among docker's default devices: only --device opens it, and :r only for reading.
	if out := ok(t, root, "run", "--rm", "--device", "/dev/fuse:/dev/f", "busybox", "sh", "-c", `: > /dev/f && echo opened`).stdout; out != "opened\n" {
		t.Errorf("--device /dev/fuse:/dev/f: %q", out)
	}
	r := kiln(t, root, nil, "run", "--rm", "--device", "/dev/fuse:/dev/f:r", "busybox", "sh", "-c", `: > /dev/f && echo opened`)
	if r.code == 0 || !strings.Contains(r.stderr, "not permitted") {
		t.Errorf("--device /dev/fuse:/dev/f:r opened for writing: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = kiln(t, root, nil, "run", "--rm", "busybox", "sh", "-c", `ls /dev/fuse`)
	if r.code == 0 {
		t.Errorf("without --device the container has /dev/fuse: %q", r.stdout)
	}
}

// --pid host and --ipc host share the host's namespaces.
func TestRunHostNamespaces(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	pidNS, _ := os.Readlink("/proc/self/ns/pid")
	ipcNS, _ := os.Readlink("/proc/self/ns/ipc")
	out := ok(t, root, "run", "--rm", "--pid", "host", "--ipc", "host", "busybox", "sh", "-c",
		`readlink /proc/self/ns/pid; readlink /proc/self/ns/ipc`).stdout
	if out != pidNS+"\n"+ipcNS+"\n" {
		t.Errorf("--pid host --ipc host: %q, host %s %s", out, pidNS, ipcNS)
	}
	out = ok(t, root, "run", "--rm", "busybox", "readlink", "/proc/self/ns/pid").stdout
	if out == pidNS+"\n" {
		t.Errorf("without --pid host the container shares the host's PID namespace")
	}
}

// -P publishes the image's EXPOSE and --expose on random host ports; labels merge over the
// image's and ps filters by them; --cidfile is written once.
func TestCreatePublishAllLabelsCidfile(t *testing.T) {
	requireContainers(t)
	root := webRoot(t)
	dir := t.TempDir()
	cid, labels := filepath.Join(dir, "cid"), filepath.Join(dir, "labels")
	if err := os.WriteFile(labels, []byte("# comment\nfile=yes\ntier=file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(ok(t, root, "create", "--name", "w", "-P", "--expose", "90-91", "-p", "8089:80", "-p", "127.0.0.1::7000",
		"--label-file", labels, "--label", "tier=flag", "-l", "bare", "--cidfile", cid, "web").stdout)
	if data, err := os.ReadFile(cid); err != nil || string(data) != id {
		t.Errorf("--cidfile holds %q (%v), want %s", data, err, id)
	}
	ports := ok(t, root, "port", "w").stdout
	for _, p := range []string{"80/tcp -> 0.0.0.0:8089\n", "53/udp -> 0.0.0.0:", "90/tcp -> 0.0.0.0:", "91/tcp -> 0.0.0.0:", "7000/tcp -> 127.0.0.1:"} {
		if !strings.Contains(ports, p) {
			t.Errorf("kiln port lacks %q:\n%s", p, ports)
		}
	}
	if strings.Count(ports, "80/tcp") != 1 {
		t.Errorf("-p 8089:80 must win over -P for port 80:\n%s", ports)
	}
	in := inspectOne(t, root, "w")
	if len(in.Config.ExposedPorts) != 4 {
		t.Errorf("ExposedPorts %v, want 53/udp, 80/tcp, 90/tcp and 91/tcp", in.Config.ExposedPorts)
	}
	want := map[string]string{"from": "image", "tier": "flag", "file": "yes", "bare": ""}
	if len(in.Config.Labels) != len(want) {
		t.Errorf("labels %v, want %v", in.Config.Labels, want)
	}
	for k, v := range want {
		if got, ok := in.Config.Labels[k]; !ok || got != v {
			t.Errorf("label %s = %q, want %q", k, got, v)
		}
	}
	ok(t, root, "create", "--name", "plain", "busybox", "true")
	if got := ok(t, root, "ps", "-a", "-q", "--filter", "label=tier=flag").stdout; got != id[:12]+"\n" {
		t.Errorf("ps --filter label=tier=flag: %q", got)
	}
	if got := ok(t, root, "ps", "-a", "-q", "--filter", "label=bare").stdout; got != id[:12]+"\n" {
		t.Errorf("ps --filter label=bare: %q", got)
	}
	if got := ok(t, root, "ps", "-a", "-q", "--filter", "label=tier=image").stdout; got != "" {
		t.Errorf("ps --filter label=tier=image: %q", got)
	}
	r := kiln(t, root, nil, "create", "--cidfile", cid, "busybox", "true")
	if r.code != 125 || !strings.Contains(r.stderr, "--cidfile "+cid+" already exists") {
		t.Errorf("create with an existing --cidfile: exit %d %s", r.code, r.stderr)
	}
	if n := len(psRows(t, root)); n != 2 {
		t.Errorf("a refused --cidfile still created a container: %d containers", n)
	}
}

// -a picks the streams a foreground run attaches.
func TestRunAttach(t *testing.T) {
	requireContainers(t)
	root := busyboxRoot(t)
	r := kiln(t, root, nil, "run", "--rm", "-a", "stderr", "busybox", "sh", "-c", "echo out; echo err >&2")
	if r.code != 0 || r.stdout != "" || r.stderr != "err\n" {
		t.Errorf("-a stderr: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = kiln(t, root, strings.NewReader("hi\n"), "run", "--rm", "-a", "stdin", "-a", "STDOUT", "busybox", "cat")
	if r.code != 0 || r.stdout != "hi\n" {
		t.Errorf("-a stdin -a stdout: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// Every malformed value of the new flags is a usage error (exit 2) naming the flag, before any work.
func TestRunHostFlagsBadInput(t *testing.T) {
	root := t.TempDir()
	existing := filepath.Join(root, "cid")
	if err := os.WriteFile(existing, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--ulimit", "nofile=2048:1024"}, 2, "--ulimit"},
		{[]string{"--ulimit", "bogus=1"}, 2, "--ulimit"},
		{[]string{"--add-host", "db"}, 2, "--add-host"},
		{[]string{"--add-host", "db:1.2.3"}, 2, "--add-host"},
		{[]string{"--dns", "example.com"}, 2, "--dns"},
		{[]string{"--dns-search", ""}, 2, "--dns-search"},
		{[]string{"--shm-size", "lots"}, 2, "--shm-size"},
		{[]string{"--shm-size", "0"}, 2, "--shm-size"},
		{[]string{"--device", "dev/null"}, 2, "--device"},
		{[]string{"--device", "/dev/null:/dev/n:rwx"}, 2, "--device"},
		{[]string{"--pid", "container:x"}, 2, "--pid"},
		{[]string{"--ipc", "container:x"}, 2, "--ipc"},
		{[]string{"--sysctl", "kernel.panic=1"}, 2, "--sysctl kernel.panic is not allowed"},
		{[]string{"--sysctl", "noequals"}, 2, "--sysctl"},
		{[]string{"--network", "host", "--sysctl", "net.ipv4.ip_forward=1"}, 2, "--network host"},
		{[]string{"--ipc", "host", "--sysctl", "kernel.shmmax=1"}, 2, "--ipc host"},
		{[]string{"--memory-swap", "1x"}, 2, "--memory-swap"},
		{[]string{"--expose", "0"}, 2, "--expose"},
		{[]string{"--expose", "80/sctp"}, 2, "--expose"},
		{[]string{"--stop-signal", "SIGNOPE"}, 2, "--stop-signal"},
		{[]string{"--stop-timeout", "-5"}, 2, "--stop-timeout"},
		{[]string{"--stop-timeout", "soon"}, 2, "--stop-timeout"},
		{[]string{"--label", "=v"}, 2, "--label"},
		{[]string{"--label-file", filepath.Join(root, "missing")}, 2, "--label-file"},
		{[]string{"-a", "stdwhat"}, 2, "-a"},
		{[]string{"-d", "-a", "stdout"}, 2, "-a and -d"},
		{[]string{"--cidfile", existing}, 125, "already exists"},
		{[]string{"--platform", "linux/s390x"}, 2, "linux/s390x"},
		{[]string{"--no-such-flag"}, 2, "unknown flag"},
		{[]string{"--privileged=maybe"}, 2, "--privileged"},
	} {
		for _, verb := range []string{"run", "create"} {
			args := append(append([]string{verb, "--pull=never"}, tc.args...), "busybox", "true")
			r := kiln(t, root, nil, args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.msg) {
				t.Errorf("kiln %s: exit %d (want %d), stderr %q (want %q)", strings.Join(args, " "), r.code, tc.code, r.stderr, tc.msg)
			}
		}
	}
}

// Rootless, the flags a user namespace can honour work and the others fail naming why.
func TestRootlessHostFlags(t *testing.T) {
	r := newRootless(t)
	ctxDir := t.TempDir()
	busyboxContext(t, ctxDir)
	r.ok("build", "-t", "bb", ctxDir)
	out := r.ok("run", "--rm", "--ulimit", "nofile=512:1024", "--add-host", "db:10.1.2.3", "--dns", "9.9.9.9", "--shm-size", "4m",
		"--group-add", "4321", "bb", "sh", "-c", `ulimit -n; grep db /etc/hosts; grep nameserver /etc/resolv.conf; df -k /dev/shm | tail -1 | awk '{print $2}'; id -G`).stdout
	if !strings.HasPrefix(out, "512\n10.1.2.3\tdb\nnameserver 9.9.9.9\n4096\n") || !strings.Contains(out, "4321") {
		t.Errorf("rootless process and /etc flags:\n%s", out)
	}
	pidNS, _ := os.Readlink("/proc/self/ns/pid")
	ipcNS, _ := os.Readlink("/proc/self/ns/ipc")
	if res := r.kiln("run", "--rm", "--pid", "host", "--ipc", "host", "bb", "sh", "-c", "readlink /proc/self/ns/pid; readlink /proc/self/ns/ipc"); res.code != 0 || res.stdout != pidNS+"\n"+ipcNS+"\n" {
		t.Errorf("rootless --pid host --ipc host: exit %d, %q (host %s %s)\n%s", res.code, res.stdout, pidNS, ipcNS, res.stderr)
	}
	if _, err := os.Stat("/usr/bin/tini-static"); err == nil {
		if res := r.kiln("run", "--rm", "--init", "bb", "cat", "/proc/1/cmdline"); res.code != 0 || !strings.HasPrefix(res.stdout, "/dev/init\x00--\x00cat") {
			t.Errorf("rootless --init: exit %d, %q\n%s", res.code, res.stdout, res.stderr)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--privileged"}, "--privileged needs root"},
		{[]string{"--device", "/dev/fuse"}, "--device needs root"},
		{[]string{"--cpuset-cpus", "0"}, "--cpuset-cpus needs"}, // cgroup v2 delegated to the user (TestRootlessLimitsRefused)
	} {
		args := append(append([]string{"run", "--rm"}, tc.args...), "bb", "true")
		if res := r.kiln(args...); res.code != 125 || !strings.Contains(res.stderr, tc.want) {
			t.Errorf("rootless kiln %s: exit %d, %q (want 125 and %q)", strings.Join(args, " "), res.code, res.stderr, tc.want)
		}
	}
}

// A -P port forwards to the container like a -p one.
func TestRunPublishAllForwards(t *testing.T) {
	requireContainers(t)
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("needs iptables (apt-get install iptables)")
	}
	root := busyboxRoot(t)
	ok(t, root, "run", "-d", "--name", "httpd", "-P", "--expose", "80", "busybox",
		"sh", "-c", "mkdir /www && echo random-port > /www/index.html && exec httpd -f -p 80 -h /www")
	defer kiln(t, root, nil, "rm", "-f", "httpd")
	port := strings.TrimSpace(ok(t, root, "port", "httpd", "80").stdout)
	_, hostPort, found := strings.Cut(port, "0.0.0.0:")
	if !found {
		t.Fatalf("kiln port httpd 80: %q", port)
	}
	var body []byte
	waitFor(t, "the -P port", func() bool {
		resp, err := http.Get("http://127.0.0.1:" + hostPort + "/")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ = io.ReadAll(resp.Body)
		return true
	})
	if string(body) != "random-port\n" {
		t.Errorf("GET through -P: %q", body)
	}
}
