package sbom

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// MediaType is the media type of MarshalSPDX's output, as in-toto and BuildKit name it.
const MediaType = "application/spdx+json"

// PredicateType is the in-toto predicate type of an SPDX 2.3 document, for an attestation.
const PredicateType = "https://spdx.dev/Document"

// The SPDX 2.3 JSON schema's subset kiln writes: field order is the struct order, so the same
// document always marshals to the same bytes.
type spdxDocument struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	Comment           string             `json:"comment,omitempty"`
	CreationInfo      spdxCreationInfo   `json:"creationInfo"`
	Packages          []spdxPackage      `json:"packages"`
	Files             []spdxFile         `json:"files,omitempty"`
	ExtractedLicenses []spdxExtracted    `json:"hasExtractedLicensingInfos,omitempty"`
	Relationships     []spdxRelationship `json:"relationships"`
}

type spdxCreationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPackage struct {
	SPDXID                string            `json:"SPDXID"`
	Name                  string            `json:"name"`
	VersionInfo           string            `json:"versionInfo,omitempty"`
	Supplier              string            `json:"supplier,omitempty"`
	DownloadLocation      string            `json:"downloadLocation"`
	FilesAnalyzed         bool              `json:"filesAnalyzed"`
	SourceInfo            string            `json:"sourceInfo,omitempty"`
	LicenseConcluded      string            `json:"licenseConcluded"`
	LicenseDeclared       string            `json:"licenseDeclared"`
	CopyrightText         string            `json:"copyrightText"`
	ExternalRefs          []spdxExternalRef `json:"externalRefs,omitempty"`
	PrimaryPackagePurpose string            `json:"primaryPackagePurpose,omitempty"`
}

type spdxExternalRef struct {
	ReferenceCategory string `json:"referenceCategory"`
	ReferenceType     string `json:"referenceType"`
	ReferenceLocator  string `json:"referenceLocator"`
}

type spdxFile struct {
	SPDXID           string         `json:"SPDXID"`
	FileName         string         `json:"fileName"`
	Checksums        []spdxChecksum `json:"checksums"`
	LicenseConcluded string         `json:"licenseConcluded"`
	CopyrightText    string         `json:"copyrightText"`
}

type spdxChecksum struct {
	Algorithm     string `json:"algorithm"`
	ChecksumValue string `json:"checksumValue"`
}

type spdxExtracted struct {
	LicenseID     string `json:"licenseId"`
	ExtractedText string `json:"extractedText"`
	Name          string `json:"name"`
}

type spdxRelationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
	Comment string `json:"comment,omitempty"`
}

const (
	noAssertion = "NOASSERTION"
	imageID     = "SPDXRef-image"
)

// evidentBy is syft's comment for a package-to-file OTHER relationship, kept for the tools
// that already read it.
const evidentBy = "evident-by: indicates the package's existence is evident by the given file"

// MarshalSPDX writes the document as SPDX 2.3 JSON: the image is the described package, which
// CONTAINS every package found; each package is evident by the files it was read from; a Go
// main module DEPENDS_ON the modules of its binary.
func (d *Document) MarshalSPDX() ([]byte, error) {
	out := spdxDocument{
		SPDXVersion:       "SPDX-2.3",
		DataLicense:       "CC0-1.0",
		SPDXID:            "SPDXRef-DOCUMENT",
		Name:              d.Name,
		DocumentNamespace: d.Namespace,
		Comment:           strings.Join(d.Notes, "\n"),
		CreationInfo: spdxCreationInfo{
			Created:  d.Created.UTC().Format(time.RFC3339),
			Creators: []string{"Tool: " + d.Tool},
		},
		Packages: []spdxPackage{{
			SPDXID: imageID, Name: d.Name, DownloadLocation: noAssertion,
			LicenseConcluded: noAssertion, LicenseDeclared: noAssertion, CopyrightText: noAssertion,
			PrimaryPackagePurpose: "CONTAINER",
		}},
		Relationships: []spdxRelationship{{Element: "SPDXRef-DOCUMENT", Type: "DESCRIBES", Related: imageID}},
	}
	fileIDs := map[string]string{}
	for _, f := range d.Files {
		id := "SPDXRef-File-" + idSafe(strings.TrimPrefix(f.Path, "/")) + "-" + shortHash(f.Path)
		fileIDs[f.Path] = id
		out.Files = append(out.Files, spdxFile{
			SPDXID: id, FileName: f.Path,
			Checksums:        []spdxChecksum{{"SHA1", f.SHA1}, {"SHA256", f.SHA256}},
			LicenseConcluded: noAssertion, CopyrightText: noAssertion,
		})
	}
	ids := make([]string, len(d.Packages))
	refs := map[string]bool{}
	var rels []spdxRelationship
	for i, p := range d.Packages {
		ids[i] = "SPDXRef-Package-" + p.Type + "-" + idSafe(p.Name) + "-" +
			shortHash(p.PURL+"\x00"+p.Name+"\x00"+p.Version+"\x00"+strings.Join(p.Locations, "\x00"))
		lic := p.License
		if lic == "" {
			lic = noAssertion
		}
		for _, r := range licenseRefs(lic) {
			refs[r] = true
		}
		sp := spdxPackage{
			SPDXID: ids[i], Name: p.Name, VersionInfo: p.Version, Supplier: p.Supplier,
			DownloadLocation: noAssertion, SourceInfo: "acquired package info from " + strings.Join(p.Locations, ", "),
			LicenseConcluded: noAssertion, LicenseDeclared: lic, CopyrightText: noAssertion,
		}
		if sp.Supplier == "" {
			sp.Supplier = noAssertion
		}
		if p.PURL != "" {
			sp.ExternalRefs = []spdxExternalRef{{"PACKAGE-MANAGER", "purl", p.PURL}}
		}
		out.Packages = append(out.Packages, sp)
		rels = append(rels, spdxRelationship{Element: imageID, Type: "CONTAINS", Related: ids[i]})
		for _, l := range p.Locations {
			fid, ok := fileIDs[l]
			if !ok {
				return nil, fmt.Errorf("sbom: package %s names %s, which the document does not list", p.Name, l)
			}
			rels = append(rels, spdxRelationship{Element: ids[i], Type: "OTHER", Related: fid, Comment: evidentBy})
		}
	}
	for i, p := range d.Packages {
		if !p.Main {
			continue
		}
		for j, q := range d.Packages {
			if j != i && q.Type == "golang" && len(q.Locations) > 0 && q.Locations[0] == p.Locations[0] {
				rels = append(rels, spdxRelationship{Element: ids[i], Type: "DEPENDS_ON", Related: ids[j]})
			}
		}
	}
	slices.SortFunc(rels, func(a, b spdxRelationship) int {
		return strings.Compare(a.Element+"\x00"+a.Type+"\x00"+a.Related, b.Element+"\x00"+b.Type+"\x00"+b.Related)
	})
	out.Relationships = append(out.Relationships, rels...)
	for _, r := range slices.Sorted(maps.Keys(refs)) {
		name := strings.TrimPrefix(r, "LicenseRef-")
		out.ExtractedLicenses = append(out.ExtractedLicenses, spdxExtracted{
			LicenseID: r, Name: name,
			ExtractedText: "The package names its license \"" + name + "\", which is not an SPDX license identifier; the package's own files hold its text.",
		})
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return nil, fmt.Errorf("sbom: marshal: %w", err)
	}
	return b.Bytes(), nil
}

// shortHash tells apart elements whose names are alike (a package in two node_modules).
func shortHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:8])
}
