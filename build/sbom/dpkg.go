package sbom

import (
	"fmt"
	"strings"
)

// dpkgPackages reads dpkg's status database, or one file of distroless' status.d (which has
// no Status field: everything in it is installed).
func dpkgPackages(data []byte, statusD bool, d distro) ([]Package, error) {
	paras, err := parseParagraphs(data, false)
	if err != nil {
		return nil, err
	}
	ns := d.id
	if ns == "" {
		ns = "debian"
	}
	var out []Package
	for i, p := range paras {
		name := p.get("package")
		if name == "" {
			return nil, fmt.Errorf("paragraph %d has no Package field", i+1)
		}
		// Removed packages linger as "deinstall ok config-files"; only installed ones count.
		if st := strings.Fields(p.get("status")); len(st) > 0 && st[len(st)-1] != "installed" || len(st) == 0 && !statusD {
			continue
		}
		version := p.get("version")
		q := [][2]string{{"arch", p.get("architecture")}, {"distro", d.qualifier()}}
		if src, _, _ := strings.Cut(p.get("source"), " "); src != "" && src != name {
			q = append(q, [2]string{"upstream", src})
		}
		out = append(out, Package{
			Type:     "deb",
			Name:     name,
			Version:  version,
			Supplier: supplier(p.get("maintainer")),
			PURL:     purl("deb", ns, name, version, q...),
		})
	}
	return out, nil
}

// debCopyrightLicense reads a machine-readable (DEP-5) copyright file's licenses as one SPDX
// expression; a free-form copyright file states none a machine can read, so "".
func debCopyrightLicense(data []byte) string {
	paras, err := parseParagraphs(data, false)
	// DEP-5 1.0 names its format; its drafts, still in old packages, said Format-Specification.
	if err != nil || len(paras) == 0 || !strings.Contains(paras[0].get("format"), "copyright-format/1.0") && paras[0]["format-specification"] == nil {
		return ""
	}
	var exprs []string
	for i, p := range paras {
		// Stand-alone License paragraphs only hold texts the Files paragraphs name.
		if i > 0 && p["files"] == nil {
			continue
		}
		for _, v := range p["license"] {
			short, _, _ := strings.Cut(v, "\n")
			if e := debLicenseExpr(strings.TrimSpace(short)); e != "" {
				exprs = append(exprs, e)
			}
		}
	}
	return joinAnd(exprs)
}
