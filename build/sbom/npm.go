package sbom

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// npmManifest is the part of a package.json that says what the package is.
type npmManifest struct {
	Name     string          `json:"name"`
	Version  string          `json:"version"`
	License  json.RawMessage `json:"license"`
	Licenses []npmLicense    `json:"licenses"` // the old form
	Author   json.RawMessage `json:"author"`
}

type npmLicense struct {
	Type string `json:"type"`
}

// npmPackage reads an installed package's package.json.
func npmPackage(data []byte) (*Package, error) {
	var m npmManifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("not a package.json: %w", err)
	}
	if m.Name == "" {
		return nil, errors.New("no name")
	}
	ns, name := "", m.Name
	if scope, n, ok := strings.Cut(m.Name, "/"); ok && strings.HasPrefix(scope, "@") {
		ns, name = scope, n
	}
	return &Package{
		Type:     "npm",
		Name:     m.Name,
		Version:  m.Version,
		License:  npmLicenseExpr(m),
		Supplier: supplier(npmPerson(m.Author)),
		PURL:     purl("npm", ns, name, m.Version),
	}, nil
}

// npmLicenseExpr reads "license": "EXPR", the older "license": {"type": …} and "licenses": [...].
func npmLicenseExpr(m npmManifest) string {
	var s string
	var obj npmLicense
	switch {
	case json.Unmarshal(m.License, &s) == nil && s != "":
		return spdxExpr(s)
	case json.Unmarshal(m.License, &obj) == nil && obj.Type != "":
		return spdxExpr(obj.Type)
	}
	var ids []string
	for _, l := range m.Licenses {
		if l.Type != "" {
			ids = append(ids, spdxExpr(l.Type))
		}
	}
	// "licenses" lists alternatives to choose from, as npm documented it.
	if len(ids) == 1 {
		return ids[0]
	}
	for i, id := range ids {
		ids[i] = paren(id)
	}
	return strings.Join(ids, " OR ")
}

// npmPerson reads "author": "Name <email> (url)" or {"name": …, "email": …}.
func npmPerson(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		name, _, _ := strings.Cut(s, "(")
		return strings.TrimSpace(name)
	}
	var p struct{ Name, Email string }
	if json.Unmarshal(raw, &p) != nil || p.Name == "" {
		return ""
	}
	if p.Email != "" {
		return p.Name + " <" + p.Email + ">"
	}
	return p.Name
}
