package build

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// lookupID finds name in an /etc/passwd or /etc/group file and returns field 2 (the id) and,
// for passwd, field 3 (the primary group).
func lookupID(file []byte, name string) (id, primary int, ok bool) {
	sc := bufio.NewScanner(bytes.NewReader(file))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) < 3 || f[0] != name {
			continue
		}
		id, err := strconv.Atoi(f[2])
		if err != nil {
			continue
		}
		primary = id
		if len(f) > 3 {
			if g, err := strconv.Atoi(f[3]); err == nil {
				primary = g
			}
		}
		return id, primary, true
	}
	return 0, 0, false
}

// resolveOwner turns "user[:group]" into numeric ids using the image's own account files.
// A user without a group gets the user's id as gid for COPY --chown, as docker does; for
// USER (primaryGroup set) it gets the user's primary group.
func (v *fsView) resolveOwner(spec string, primaryGroup bool) (uid, gid int, err error) {
	if spec == "" {
		return 0, 0, nil
	}
	u, g, hasGroup := strings.Cut(spec, ":")
	uid, err = strconv.Atoi(u)
	primary := uid
	if err != nil {
		var ok bool
		uid, primary, ok = lookupID(v.files["etc/passwd"], u)
		if !ok {
			return 0, 0, fmt.Errorf("unable to find user %s: no matching entries in the image's /etc/passwd", u)
		}
	}
	switch {
	case hasGroup:
		if gid, err = strconv.Atoi(g); err != nil {
			var ok bool
			if gid, _, ok = lookupID(v.files["etc/group"], g); !ok {
				return 0, 0, fmt.Errorf("unable to find group %s: no matching entries in the image's /etc/group", g)
			}
		}
	case primaryGroup:
		gid = primary
	default:
		gid = uid
	}
	return uid, gid, nil
}
