package build

import (
	"fmt"
	"io/fs"
	"strconv"
	"strings"
)

// chmodSpec is a parsed --chmod: an octal mode, or chmod(1)-style symbolic clauses such as
// "u+x,go-w" applied to each source file's own mode.
type chmodSpec struct {
	raw     string
	octal   *uint32
	clauses []chmodClause
}

type chmodClause struct {
	who  uint32 // mask of the permission bits the clause touches (u, g, o)
	op   byte   // '+', '-' or '='
	perm string // letters from rwxXst
}

// parseChmod accepts an octal mode (0755) or symbolic clauses ([ugoa]*[+-=][rwxXst]*, comma separated).
func parseChmod(s string) (*chmodSpec, error) {
	if s == "" {
		return nil, nil
	}
	bad := fmt.Errorf("invalid --chmod=%s: use an octal mode such as 0755 or symbolic clauses such as u+x,go-w", s)
	if m, err := strconv.ParseUint(s, 8, 32); err == nil {
		if m > 0o7777 {
			return nil, bad
		}
		v := uint32(m)
		return &chmodSpec{raw: s, octal: &v}, nil
	}
	spec := &chmodSpec{raw: s}
	for _, c := range strings.Split(s, ",") {
		i := strings.IndexAny(c, "+-=")
		if i < 0 || strings.Trim(c[:i], "ugoa") != "" || strings.Trim(c[i+1:], "rwxXst") != "" {
			return nil, bad
		}
		cl := chmodClause{op: c[i], perm: c[i+1:]}
		for _, w := range c[:i] {
			cl.who |= map[rune]uint32{'u': 0o4700, 'g': 0o2070, 'o': 0o1007, 'a': 0o7777}[w]
		}
		if cl.who == 0 {
			cl.who = 0o7777 // chmod(1) without umask semantics, as BuildKit does
		}
		spec.clauses = append(spec.clauses, cl)
	}
	return spec, nil
}

// apply returns the mode (permission and special bits) a file of mode m gets.
func (c *chmodSpec) apply(m uint32, isDir bool) uint32 {
	if c.octal != nil {
		return *c.octal
	}
	for _, cl := range c.clauses {
		var bits uint32
		for _, p := range cl.perm {
			switch p {
			case 'r':
				bits |= 0o444
			case 'w':
				bits |= 0o222
			case 'x':
				bits |= 0o111
			case 'X':
				if isDir || m&0o111 != 0 {
					bits |= 0o111
				}
			case 's':
				bits |= 0o6000
			case 't':
				bits |= 0o1000
			}
		}
		bits &= cl.who
		switch cl.op {
		case '+':
			m |= bits
		case '-':
			m &^= bits
		case '=':
			m = m&^(cl.who&0o7777) | bits
		}
	}
	return m
}

// fileModeBits converts a Go file mode to Unix permission and special bits.
func fileModeBits(m fs.FileMode) uint32 {
	v := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	return v
}
