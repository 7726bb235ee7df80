package runtime

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// execUser is a resolved container user: ids for the OCI process and HOME for its environment.
type execUser struct {
	specs.User
	Home string
}

// account is one line of /etc/passwd or /etc/group, reduced to what user resolution needs.
type account struct {
	name    string
	id      uint32
	gid     uint32   // passwd only: primary group
	home    string   // passwd only
	members []string // group only
}

// resolveUser turns "name", "uid", "uid:gid" or "name:group" into ids by reading /etc/passwd and
// /etc/group inside rootfs (symlinks resolved inside it), like docker: numeric ids need no entry.
func resolveUser(rootfs, spec string) (execUser, error) {
	u := execUser{Home: "/root"}
	if spec == "" {
		spec = "0"
	}
	userArg, groupArg, hasGroup := strings.Cut(spec, ":")
	passwd, err := readAccounts(rootfs, "/etc/passwd", parsePasswd)
	if err != nil {
		return u, err
	}
	usr, err := findAccount(passwd, userArg, "user", "/etc/passwd")
	if err != nil {
		return u, err
	}
	u.UID, u.GID, u.Home = usr.id, usr.gid, usr.home
	if usr.home == "" {
		u.Home = "/"
		if usr.id == 0 {
			u.Home = "/root"
		}
	}
	groups, err := readAccounts(rootfs, "/etc/group", parseGroup)
	if err != nil {
		return u, err
	}
	if hasGroup {
		grp, err := findAccount(groups, groupArg, "group", "/etc/group")
		if err != nil {
			return u, err
		}
		u.GID = grp.id
		return u, nil
	}
	if usr.name != "" {
		for _, g := range groups {
			if g.id != u.GID && containsString(g.members, usr.name) {
				u.AdditionalGids = append(u.AdditionalGids, g.id)
			}
		}
	}
	return u, nil
}

// findAccount finds by name first, then by numeric id; a numeric id without an entry is valid.
func findAccount(list []account, arg, kind, file string) (account, error) {
	if arg == "" {
		return account{}, fmt.Errorf("empty %s name in user spec", kind)
	}
	for _, a := range list {
		if a.name == arg {
			return a, nil
		}
	}
	n, err := strconv.ParseUint(arg, 10, 32)
	if err != nil {
		return account{}, fmt.Errorf("unable to find %s %s: no matching entries in %s (use a numeric id or add the entry to the image)", kind, arg, file)
	}
	for _, a := range list {
		if a.id == uint32(n) {
			return a, nil
		}
	}
	return account{id: uint32(n)}, nil
}

// readAccounts opens file confined to rootfs; a missing file yields no entries, as in docker.
func readAccounts(rootfs, file string, parse func([]string) (account, bool)) ([]account, error) {
	f, err := openInRoot(rootfs, file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open %s in rootfs: %w", file, err)
	}
	defer f.Close()
	var out []account
	sc := bufio.NewScanner(io.LimitReader(f, 16<<20))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if a, ok := parse(strings.Split(line, ":")); ok {
			out = append(out, a)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s in rootfs: %w", file, err)
	}
	return out, nil
}

func parsePasswd(f []string) (account, bool) {
	if len(f) < 4 {
		return account{}, false
	}
	uid, err1 := strconv.ParseUint(f[2], 10, 32)
	gid, err2 := strconv.ParseUint(f[3], 10, 32)
	if err1 != nil || err2 != nil {
		return account{}, false
	}
	a := account{name: f[0], id: uint32(uid), gid: uint32(gid)}
	if len(f) > 5 {
		a.home = f[5]
	}
	return a, true
}

func parseGroup(f []string) (account, bool) {
	if len(f) < 3 {
		return account{}, false
	}
	gid, err := strconv.ParseUint(f[2], 10, 32)
	if err != nil {
		return account{}, false
	}
	a := account{name: f[0], id: uint32(gid)}
	if len(f) > 3 && f[3] != "" {
		a.members = strings.Split(f[3], ",")
	}
	return a, true
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if strings.TrimSpace(v) == s {
			return true
		}
	}
	return false
}

// openInRoot opens a file for reading with symlinks resolved inside root (openat2 RESOLVE_IN_ROOT
// where available), so an image's absolute symlinks never reach host files.
func openInRoot(root, name string) (*os.File, error) {
	h, err := pathrs.OpenInRoot(root, name)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	return pathrs.Reopen(h, unix.O_RDONLY|unix.O_CLOEXEC)
}
