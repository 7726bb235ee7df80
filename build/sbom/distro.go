package sbom

import (
	"bufio"
	"bytes"
	"strings"
)

// distro is what os-release says of the image's distribution, for the PURLs' namespace and
// distro qualifier.
type distro struct {
	id, versionID, codename string
}

// parseOSRelease reads os-release(5): KEY=value lines, values optionally quoted.
func parseOSRelease(data []byte) distro {
	var d distro
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"'`)
		switch k {
		case "ID":
			d.id = strings.ToLower(v)
		case "VERSION_ID":
			d.versionID = v
		case "VERSION_CODENAME":
			d.codename = v
		}
	}
	return d
}

// qualifier is the PURL distro qualifier, "debian-12", "alpine-3.20.3"; "" when unknown.
func (d distro) qualifier() string {
	if d.id == "" || d.versionID == "" {
		return d.id
	}
	return d.id + "-" + d.versionID
}
