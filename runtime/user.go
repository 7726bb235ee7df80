package runtime

import (
	"fmt"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/kiln-build/kiln/internal/passwd"
	"github.com/kiln-build/kiln/internal/rootfile"
)

// execUser is a resolved container user: ids for the OCI process and HOME for its environment.
type execUser struct {
	specs.User
	Home string
}

// resolveUser turns "name", "uid", "uid:gid" or "name:group" into ids by reading /etc/passwd and
// /etc/group inside rootfs (symlinks resolved inside it), like docker: numeric ids need no entry.
func resolveUser(rootfs, spec string) (execUser, error) {
	u := execUser{Home: "/root"}
	if spec == "" {
		spec = "0"
	}
	userArg, groupArg, hasGroup := strings.Cut(spec, ":")
	data, err := readAccountFile(rootfs, "/etc/passwd")
	if err != nil {
		return u, err
	}
	usr, err := passwd.LookupUser(passwd.ParseUsers(data), userArg)
	if err != nil {
		return u, err
	}
	u.UID, u.GID, u.Home = usr.UID, usr.GID, usr.Home
	if usr.Home == "" {
		u.Home = "/"
		if usr.UID == 0 {
			u.Home = "/root"
		}
	}
	if data, err = readAccountFile(rootfs, "/etc/group"); err != nil {
		return u, err
	}
	groups := passwd.ParseGroups(data)
	if hasGroup {
		grp, err := passwd.LookupGroup(groups, groupArg)
		if err != nil {
			return u, err
		}
		u.GID = grp.GID
		return u, nil
	}
	u.AdditionalGids = passwd.SupplementaryGroups(groups, usr.Name, u.GID)
	return u, nil
}

// readAccountFile reads file confined to rootfs; a missing file has no entries, as in docker.
func readAccountFile(rootfs, file string) ([]byte, error) {
	data, err := rootfile.Read(rootfs, file, 0)
	if rootfile.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read accounts: %w", err)
	}
	return data, nil
}
