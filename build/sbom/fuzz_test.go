package sbom

import (
	"os"
	"strings"
	"testing"
)

// FuzzParseDatabases feeds one input to every parser of package metadata: none may panic,
// every package they return has a name and a PURL, and every license they write is an SPDX
// expression that reads back as itself.
func FuzzParseDatabases(f *testing.F) {
	for _, name := range []string{
		"testdata/debian/var/lib/dpkg/status", "testdata/debian/usr/share/doc/bash/copyright",
		"testdata/alpine/lib/apk/db/installed", "testdata/apps/usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA",
		"testdata/apps/app/node_modules/legacy/package.json",
	} {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		if len(data) > 8<<10 { // the engine mutates small inputs far faster
			data = data[:8<<10]
		}
		f.Add(data)
	}
	f.Add([]byte("Package: a\nStatus: install ok installed\nVersion: 1:2+3\n\nPackage: b\n x\n"))
	f.Add([]byte("P:x\nV:1\nL:MIT or (Apache-2.0 AND GPL-2.0+ WITH Classpath-exception-2.0)\n\nP:y\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d := distro{id: "debian", versionID: "12"}
		var pkgs []Package
		for _, statusD := range []bool{false, true} {
			p, _ := dpkgPackages(data, statusD, d)
			pkgs = append(pkgs, p...)
		}
		p, _ := apkPackages(data, d)
		pkgs = append(pkgs, p...)
		for _, parse := range []func([]byte) (*Package, error){pythonPackage, npmPackage} {
			if p, err := parse(data); err == nil {
				pkgs = append(pkgs, *p)
			}
		}
		licenses := []string{debCopyrightLicense(data), debLicenseExpr(firstLine(data)), spdxExpr(firstLine(data))}
		for _, p := range pkgs {
			if p.Name == "" || !strings.HasPrefix(p.PURL, "pkg:"+p.Type+"/") {
				t.Errorf("package %+v: no name or a bad PURL", p)
			}
			licenses = append(licenses, p.License)
		}
		for _, l := range licenses {
			if l != "" && spdxExpr(l) != l {
				t.Errorf("license %q reads back as %q", l, spdxExpr(l))
			}
		}
	})
}

func firstLine(data []byte) string {
	s, _, _ := strings.Cut(string(data), "\n")
	return s
}
