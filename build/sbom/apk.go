package sbom

import (
	"bytes"
	"fmt"
	"strings"
)

// apkPackages reads apk's installed database: stanzas of "X:value" lines (P name, V version,
// A arch, L license, m maintainer, o origin, …) separated by blank lines.
func apkPackages(data []byte, d distro) ([]Package, error) {
	var out []Package
	cur := map[byte]string{}
	flush := func(line int) error {
		if len(cur) == 0 {
			return nil
		}
		name := cur['P']
		if name == "" {
			return fmt.Errorf("the package ending at line %d has no P: (name) line", line)
		}
		q := [][2]string{{"arch", cur['A']}, {"distro", d.qualifier()}}
		if o := cur['o']; o != "" && o != name {
			q = append(q, [2]string{"upstream", o})
		}
		out = append(out, Package{
			Type:     "apk",
			Name:     name,
			Version:  cur['V'],
			License:  apkLicense(cur['L']),
			Supplier: supplier(cur['m']),
			PURL:     purl("apk", "alpine", name, cur['V'], q...),
		})
		clear(cur)
		return nil
	}
	n := 0
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		n++
		s := strings.TrimSuffix(string(line), "\r")
		if s == "" {
			if err := flush(n); err != nil {
				return nil, err
			}
			continue
		}
		if len(s) < 2 || s[1] != ':' {
			return nil, fmt.Errorf("line %d: %q is not an \"X:value\" line", n, truncate(s, 60))
		}
		// Files (F, R, Z, a, M) repeat; of the package's own fields the first is kept.
		if _, seen := cur[s[0]]; !seen {
			cur[s[0]] = s[2:]
		}
	}
	if err := flush(n); err != nil {
		return nil, err
	}
	return out, nil
}

// apkLicense reads L:, an SPDX expression in current Alpine and a space-separated list of
// identifiers (all of which apply) in older releases.
func apkLicense(s string) string {
	e := spdxExpr(s)
	if !strings.HasPrefix(e, "LicenseRef-") || !strings.Contains(s, " ") {
		return e
	}
	var ids []string
	for _, t := range strings.Fields(s) {
		ids = append(ids, licenseID(t))
	}
	return joinAnd(ids)
}
