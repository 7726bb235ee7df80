package build

import (
	"fmt"
	"strings"

	"github.com/kiln-build/kiln/internal/passwd"
)

// resolveOwner turns "user[:group]" into numeric ids using the image's own account files
// (internal/passwd, the one parser; ids outside 0..2^32-2 are refused, never wrapped).
// A user without a group gets the user's id as gid for COPY --chown, as docker does; for
// USER (primaryGroup set) it gets the user's primary group.
func (v *fsView) resolveOwner(spec string, primaryGroup bool) (uid, gid int, err error) {
	if spec == "" {
		return 0, 0, nil
	}
	u, g, hasGroup := strings.Cut(spec, ":")
	usr, err := passwd.LookupUser(passwd.ParseUsers(v.files["etc/passwd"]), u)
	if err != nil {
		return 0, 0, fmt.Errorf("user %q: %w", spec, err)
	}
	primary := usr.GID
	if usr.Name == "" {
		primary = usr.UID // a numeric id without an entry
	}
	switch {
	case hasGroup:
		grp, err := passwd.LookupGroup(passwd.ParseGroups(v.files["etc/group"]), g)
		if err != nil {
			return 0, 0, fmt.Errorf("user %q: %w", spec, err)
		}
		gid = int(grp.GID)
	case primaryGroup:
		gid = int(primary)
	default:
		gid = int(usr.UID)
	}
	return int(usr.UID), gid, nil
}
