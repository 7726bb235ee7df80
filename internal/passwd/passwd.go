// Package passwd parses /etc/passwd and /etc/group files and looks users and groups up in
// them: the one account parser of kiln, for RUN/USER resolution and COPY --chown alike.
package passwd

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// MaxID is the largest valid uid or gid: 2^32-1 is the kernel's "no id" ((uid_t)-1).
const MaxID = 1<<32 - 2

// User is one /etc/passwd entry.
type User struct {
	Name     string
	UID, GID uint32
	Home     string
}

// Group is one /etc/group entry.
type Group struct {
	Name    string
	GID     uint32
	Members []string
}

// ParseID parses a numeric uid or gid, rejecting anything outside 0..MaxID (no wrapping).
func ParseID(s string) (uint32, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > MaxID {
		return 0, fmt.Errorf("id %q: must be a number from 0 to %d", s, uint64(MaxID))
	}
	return uint32(n), nil
}

// isNumeric says whether s is meant as a number (and so never as a name).
func isNumeric(s string) bool {
	s = strings.TrimPrefix(s, "-")
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// ParseUsers reads passwd data; comments, malformed lines and entries with ids out of range are
// skipped (they name no usable account).
func ParseUsers(data []byte) []User {
	var out []User
	eachEntry(data, 4, func(f []string) {
		uid, err1 := ParseID(f[2])
		gid, err2 := ParseID(f[3])
		if err1 != nil || err2 != nil {
			return
		}
		u := User{Name: f[0], UID: uid, GID: gid}
		if len(f) > 5 {
			u.Home = f[5]
		}
		out = append(out, u)
	})
	return out
}

// ParseGroups reads group data, skipping what ParseUsers skips.
func ParseGroups(data []byte) []Group {
	var out []Group
	eachEntry(data, 3, func(f []string) {
		gid, err := ParseID(f[2])
		if err != nil {
			return
		}
		g := Group{Name: f[0], GID: gid}
		if len(f) > 3 && f[3] != "" {
			for _, m := range strings.Split(f[3], ",") {
				g.Members = append(g.Members, strings.TrimSpace(m))
			}
		}
		out = append(out, g)
	})
	return out
}

func eachEntry(data []byte, minFields int, f func([]string)) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), len(data)+1)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if fields := strings.Split(line, ":"); len(fields) >= minFields {
			f(fields)
		}
	}
}

// LookupUser finds arg by name, then as a numeric uid; a valid numeric uid without an entry
// yields a User with only UID set (docker's rule: numeric ids need no entry).
func LookupUser(users []User, arg string) (User, error) {
	for _, u := range users {
		if u.Name == arg && arg != "" {
			return u, nil
		}
	}
	id, err := lookupNumeric(arg, "user", "/etc/passwd")
	if err != nil {
		return User{}, err
	}
	for _, u := range users {
		if u.UID == id {
			return u, nil
		}
	}
	return User{UID: id}, nil
}

// LookupGroup finds arg by name, then as a numeric gid, like LookupUser.
func LookupGroup(groups []Group, arg string) (Group, error) {
	for _, g := range groups {
		if g.Name == arg && arg != "" {
			return g, nil
		}
	}
	id, err := lookupNumeric(arg, "group", "/etc/group")
	if err != nil {
		return Group{}, err
	}
	for _, g := range groups {
		if g.GID == id {
			return g, nil
		}
	}
	return Group{GID: id}, nil
}

func lookupNumeric(arg, kind, file string) (uint32, error) {
	if arg == "" {
		return 0, fmt.Errorf("empty %s name", kind)
	}
	if !isNumeric(arg) {
		return 0, fmt.Errorf("unable to find %s %s: no matching entries in the image's %s (use a numeric id or add the entry to the image)", kind, arg, file)
	}
	id, err := ParseID(arg)
	if err != nil {
		return 0, fmt.Errorf("%s %w", kind, err)
	}
	return id, nil
}

// SupplementaryGroups returns the gids of the groups that list user as a member, except primary.
func SupplementaryGroups(groups []Group, user string, primary uint32) []uint32 {
	var out []uint32
	if user == "" {
		return nil
	}
	for _, g := range groups {
		if g.GID == primary {
			continue
		}
		for _, m := range g.Members {
			if m == user {
				out = append(out, g.GID)
				break
			}
		}
	}
	return out
}
