package runtime

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// usernsEnv marks a kiln process re-executed into its user namespace: "wait" until the parent
// has written the id maps, then "in" once it has re-executed itself as root there (an exec
// before the maps exist drops every capability, so a second exec is needed to regain them).
const usernsEnv = "_KILN_USERNS"

// InUserNamespace reports whether this process is kiln inside its own rootless user namespace.
func InUserNamespace() bool { return os.Getenv(usernsEnv) == "in" }

// IDRange maps Size ids from HostID up to ContainerID up in the user namespace.
type IDRange struct{ ContainerID, HostID, Size int }

// RootlessMaps are the id maps of kiln's user namespace: the user is root, its subordinate ids
// follow from 1. Warning is non-empty when there are no subordinate ids (a single-id map).
type RootlessMaps struct {
	UIDs, GIDs []IDRange
	Warning    string
}

// ReadRootlessMaps builds the maps of user u from subuid and subgid (/etc/subuid, /etc/subgid).
func ReadRootlessMaps(u *user.User, subuid, subgid string) (RootlessMaps, error) {
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	m := RootlessMaps{UIDs: []IDRange{{0, uid, 1}}, GIDs: []IDRange{{0, gid, 1}}}
	su, err := subordinate(subuid, u)
	if err != nil {
		return m, err
	}
	sg, err := subordinate(subgid, u)
	if err != nil {
		return m, err
	}
	if su == nil || sg == nil {
		m.Warning = fmt.Sprintf("no subordinate ids for user %s in %s and %s: only your own uid is mapped (to root), "+
			"so images with files owned by other users fail to unpack; add ranges with `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 %s`",
			u.Username, subuid, subgid, u.Username)
		return m, nil
	}
	m.UIDs = append(m.UIDs, IDRange{1, su.HostID, su.Size})
	m.GIDs = append(m.GIDs, IDRange{1, sg.HostID, sg.Size})
	return m, nil
}

// subordinate returns the first range of u (by name or uid) in a subuid/subgid file; nil if none.
func subordinate(file string, u *user.User) (*IDRange, error) {
	f, err := os.Open(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 1<<20))
	for sc.Scan() {
		parts := strings.Split(strings.TrimSpace(sc.Text()), ":")
		if len(parts) != 3 || (parts[0] != u.Username && parts[0] != u.Uid) {
			continue
		}
		start, err1 := strconv.Atoi(parts[1])
		count, err2 := strconv.Atoi(parts[2])
		if err1 != nil || err2 != nil || start <= 0 || count <= 0 {
			return nil, fmt.Errorf("%s: bad line %q for %s (want name:start:count)", file, sc.Text(), u.Username)
		}
		return &IDRange{HostID: start, Size: count}, nil
	}
	return nil, sc.Err()
}

// RootlessStateDir is the runtime state dir of an unprivileged user: $XDG_RUNTIME_DIR/kiln, or
// /tmp/kiln-<uid> without it. It is created 0700 and must be owned by the user (a dir someone
// else made in /tmp could otherwise redirect kiln's runtime state).
func RootlessStateDir(uid int) (string, error) {
	dir := fmt.Sprintf("/tmp/kiln-%d", uid)
	if x := os.Getenv("XDG_RUNTIME_DIR"); x != "" && filepath.IsAbs(x) {
		dir = filepath.Join(x, "kiln")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("runtime dir %s: %w (set XDG_RUNTIME_DIR to a directory you own, e.g. log in through systemd-logind)", dir, err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return "", fmt.Errorf("runtime dir %s: %w", dir, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || int(st.Uid) != os.Geteuid() || st.Mode&0o077 != 0 {
		return "", fmt.Errorf("runtime dir %s is not a directory of yours with mode 0700: remove it, or set XDG_RUNTIME_DIR to a directory you own", dir)
	}
	if err := unix.Access(dir, unix.W_OK); err != nil {
		return "", fmt.Errorf("runtime dir %s is not writable: %w (set XDG_RUNTIME_DIR to a writable directory you own)", dir, err)
	}
	return dir, nil
}

// UserNamespaceOptions configure EnterUserNamespace.
type UserNamespaceOptions struct {
	Args  []string  // the command line to run again inside (without argv[0])
	Env   []string  // extra environment for the child (e.g. the store root chosen outside)
	Debug io.Writer // notes on the maps; nil = silent
	Warn  io.Writer // the single-id warning
}

// EnterUserNamespace runs this kiln again inside the user's kiln user and mount namespace,
// where the user is root and its subordinate ids are mapped (newuidmap/newgidmap), as podman
// does: unpacking layers, overlay mounts and the OCI runtime then work as root there, and files
// keep their in-image owners on disk. A pause process holds the namespaces (see pauseProcess);
// the command joins them through nsenter. It returns the command's exit code, and checks every
// prerequisite before starting anything, so a failure touches no store.
func EnterUserNamespace(ctx context.Context, o UserNamespaceOptions) (int, error) {
	if err := checkUserNamespaces(); err != nil {
		return 1, err
	}
	u, err := user.Current()
	if err != nil {
		return 1, fmt.Errorf("rootless: who am I: %w", err)
	}
	maps, err := ReadRootlessMaps(u, "/etc/subuid", "/etc/subgid")
	if err != nil {
		return 1, fmt.Errorf("rootless: %w", err)
	}
	if len(maps.UIDs) > 1 {
		for _, tool := range []string{"newuidmap", "newgidmap"} {
			if _, err := exec.LookPath(tool); err != nil {
				return 1, fmt.Errorf("rootless: %s not found: install the uidmap package (apt-get install uidmap) to map your subordinate ids", tool)
			}
		}
	}
	if _, err := exec.LookPath("nsenter"); err != nil {
		return 1, fmt.Errorf("rootless: nsenter not found: install util-linux")
	}
	dir, err := RootlessStateDir(os.Getuid())
	if err != nil {
		return 1, fmt.Errorf("rootless: %w", err)
	}
	if maps.Warning != "" {
		fmt.Fprintf(orDiscard(o.Warn), "kiln: warning: %s\n", maps.Warning)
	}
	pid, err := pauseProcess(ctx, dir, maps, o.Debug)
	if err != nil {
		return 1, fmt.Errorf("rootless: %w", err)
	}
	fmt.Fprintf(orDiscard(o.Debug), "isolation: rootless (user namespace of pid %d: uids %v gids %v)\n", pid, maps.UIDs, maps.GIDs)
	// nsenter (single-threaded C, as joining a user namespace requires) makes the child root there.
	self, err := os.Executable()
	if err != nil {
		return 1, fmt.Errorf("rootless: find kiln's own binary: %w", err)
	}
	wd, err := os.Getwd()
	if err != nil {
		return 1, fmt.Errorf("rootless: %w", err)
	}
	// Joining a mount namespace moves to its root: --wd keeps relative paths (contexts, -f) working.
	args := []string{"--user", "--mount", "--target", strconv.Itoa(pid), "--wd=" + wd}
	if len(maps.UIDs) == 1 {
		// setgroups is denied with a single-id map: keep the credentials, whose uid is root there.
		args = append(args, "--preserve-credentials")
	}
	args = append(append(args, "--", self), o.Args...)
	cmd := exec.Command("nsenter", args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(append(os.Environ(), o.Env...), usernsEnv+"=in")
	return waitChild(ctx, cmd)
}

// writeMaps writes the child's id maps: through newuidmap/newgidmap (setuid helpers that check
// /etc/subuid) for subordinate ranges, directly for the single-id map (with setgroups denied,
// as the kernel requires of an unprivileged writer).
func writeMaps(pid int, m RootlessMaps) error {
	if len(m.UIDs) == 1 {
		proc := fmt.Sprintf("/proc/%d/", pid)
		for _, f := range [][2]string{
			{"uid_map", fmt.Sprintf("0 %d 1\n", m.UIDs[0].HostID)},
			{"setgroups", "deny"},
			{"gid_map", fmt.Sprintf("0 %d 1\n", m.GIDs[0].HostID)},
		} {
			if err := os.WriteFile(proc+f[0], []byte(f[1]), 0); err != nil {
				return fmt.Errorf("write %s: %w", f[0], err)
			}
		}
		return nil
	}
	for _, t := range []struct {
		tool string
		r    []IDRange
	}{{"newuidmap", m.UIDs}, {"newgidmap", m.GIDs}} {
		args := []string{strconv.Itoa(pid)}
		for _, x := range t.r {
			args = append(args, strconv.Itoa(x.ContainerID), strconv.Itoa(x.HostID), strconv.Itoa(x.Size))
		}
		if out, err := exec.Command(t.tool, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s %s: %w: %s (check your lines in /etc/subuid and /etc/subgid)", t.tool, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// UserNamespaceHook finishes a re-exec into the user namespace; call it first thing in main.
// In the "wait" stage it waits for the maps and executes kiln again (to be root there with
// every capability); in the "in" stage it makes the mount namespace private. It never returns
// on failure: the process exits.
func UserNamespaceHook() {
	switch os.Getenv(usernsEnv) {
	case "wait":
		go4 := os.NewFile(3, "userns-go")
		b := make([]byte, 1)
		if n, _ := go4.Read(b); n != 1 {
			os.Exit(1) // the parent failed and said why
		}
		go4.Close()
		os.Setenv(usernsEnv, "in") //nolint:errcheck // cannot fail for a valid name
		err := syscall.Exec("/proc/self/exe", os.Args, os.Environ())
		fmt.Fprintf(os.Stderr, "kiln: rootless: re-exec in the user namespace: %v\n", err)
		os.Exit(1)
	case "in":
		if os.Getenv(pauseEnv) != "1" {
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			os.Exit(1)
		}
		signal.Ignore(os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
		for {
			unix.Pause() // holds the namespaces until killed
		}
	}
}

// hostUID is the host uid mapped to root in this process's user namespace (the user that ran
// kiln), or the euid outside one.
func hostUID() int {
	data, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return os.Geteuid()
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "0" {
			if id, err := strconv.Atoi(f[1]); err == nil {
				return id
			}
		}
	}
	return os.Geteuid()
}

// idMapped reports whether id appears inside this process's user namespace, per mapFile
// (/proc/self/uid_map or gid_map).
func idMapped(mapFile string, id int) bool {
	data, err := os.ReadFile(mapFile)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		inside, err1 := strconv.Atoi(f[0])
		size, err2 := strconv.Atoi(f[2])
		if err1 == nil && err2 == nil && id >= inside && id-inside < size {
			return true
		}
	}
	return false
}
