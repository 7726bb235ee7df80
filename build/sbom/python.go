package sbom

import (
	"errors"
	"regexp"
	"strings"
)

// pythonPackage reads a distribution's core metadata (a .dist-info's METADATA or an
// .egg-info's PKG-INFO): RFC 822 headers, of which the first paragraph is all that matters.
func pythonPackage(data []byte) (*Package, error) {
	paras, err := parseParagraphs(data, true)
	if err != nil {
		return nil, err
	}
	if len(paras) == 0 || paras[0].get("name") == "" {
		return nil, errors.New("no Name field")
	}
	p := paras[0]
	name, version := p.get("name"), p.get("version")
	who := p.get("author-email")
	if who == "" {
		who = p.get("maintainer-email")
	}
	if who == "" {
		who = p.get("author")
	}
	return &Package{
		Type:     "pypi",
		Name:     name,
		Version:  version,
		License:  pythonLicense(p),
		Supplier: supplier(firstOf(who)),
		PURL:     purl("pypi", "", pypiName(name), version),
	}, nil
}

// pythonLicense prefers the SPDX License-Expression (PEP 639), then a License field that is
// itself an identifier, then an unambiguous trove classifier.
func pythonLicense(p paragraph) string {
	if e := p.get("license-expression"); e != "" {
		return spdxExpr(e)
	}
	if l := strings.TrimSpace(p.get("license")); l != "" && !strings.ContainsAny(l, "\n") {
		if e := spdxExpr(l); !strings.HasPrefix(e, "LicenseRef-") {
			return e
		}
	}
	var ids []string
	for _, c := range p["classifier"] {
		if id, ok := troveLicenses[strings.TrimSpace(strings.TrimPrefix(c, "License ::"))]; ok {
			ids = append(ids, id)
		}
	}
	return joinAnd(ids)
}

// troveLicenses maps the license classifiers that name one license and version.
var troveLicenses = map[string]string{
	"OSI Approved :: MIT License":                                   "MIT",
	"OSI Approved :: MIT No Attribution License (MIT-0)":            "MIT-0",
	"OSI Approved :: ISC License (ISCL)":                            "ISC",
	"OSI Approved :: Apache Software License":                       "Apache-2.0",
	"OSI Approved :: BSD License":                                   "BSD-3-Clause",
	"OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)":          "MPL-2.0",
	"OSI Approved :: Python Software Foundation License":            "PSF-2.0",
	"OSI Approved :: The Unlicense (Unlicense)":                     "Unlicense",
	"OSI Approved :: zlib/libpng License":                           "Zlib",
	"OSI Approved :: GNU General Public License v2 (GPLv2)":         "GPL-2.0-only",
	"OSI Approved :: GNU General Public License v3 (GPLv3)":         "GPL-3.0-only",
	"OSI Approved :: GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
	"OSI Approved :: GNU Affero General Public License v3":          "AGPL-3.0-only",
	"CC0 1.0 Universal (CC0 1.0) Public Domain Dedication":          "CC0-1.0",
}

var pypiRun = regexp.MustCompile(`[-_.]+`)

// pypiName is PEP 503's normalized name, which PURLs use.
func pypiName(name string) string {
	return pypiRun.ReplaceAllString(strings.ToLower(name), "-")
}

// firstOf keeps the first of a comma-separated list of people.
func firstOf(s string) string {
	first, _, _ := strings.Cut(s, ",")
	return strings.TrimSpace(first)
}
