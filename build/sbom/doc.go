// Package sbom makes an SPDX 2.3 JSON software bill of materials of an image's file tree.
//
// Scan (any fs.FS that confines its paths, such as os.Root's), ScanDir (a materialized rootfs),
// ScanLayers (layer blobs, merged with their whiteouts, never unpacked) and ScanImage (a
// go-containerregistry image, as the store returns the built one) all walk the tree once,
// without following symlinks, and read:
//
//   - Debian/Ubuntu: /var/lib/dpkg/status (installed packages only) and distroless'
//     /var/lib/dpkg/status.d/*; licenses from /usr/share/doc/PKG/copyright when it is
//     machine-readable (DEP-5), its short names translated to SPDX identifiers; a doc directory
//     that is a symlink to a sibling (libfoo-dev -> libfoo1) is read as that sibling's name.
//   - Alpine: /lib/apk/db/installed (and apk 3's /usr/lib/apk/db/installed).
//   - Go: every executable's embedded build info (debug/buildinfo, through io.ReaderAt):
//     the main module, each dependency (a replacement in its place) and the stdlib.
//   - Python: *.dist-info/METADATA, *.egg-info/PKG-INFO and *.egg-info files.
//   - npm: package.json of node_modules/NAME and node_modules/@SCOPE/NAME, at any depth.
//
// Each package gets a PURL (pkg:deb/debian, pkg:apk/alpine, pkg:golang, pkg:pypi, pkg:npm; the
// distro qualifier from /etc/os-release), the license it states as an SPDX expression (names SPDX
// does not know become LicenseRef-s declared in the document; NOASSERTION when unstated), its
// supplier, and OTHER ("evident-by", as syft writes it) relationships to the files it was read
// from, which are listed with their SHA-1 and SHA-256. Output is deterministic: sorted
// packages, files and relationships, IDs derived from content, the creation time from
// Options.Created (SOURCE_DATE_EPOCH) and the namespace from the image digest.
//
// Every file read is a regular file under a size cap (64 MiB for package databases, 16 MiB
// for a package's own metadata, 256 MiB for Go binaries); a database that is a device, too
// large or malformed fails the scan with its path; one package's unreadable metadata, or a
// binary over the cap, is left out and noted in the document's comment. An image with no
// package database gives a document with only the image in it and a comment that says so.
//
// Why a scanner of its own: anchore/syft v1.57.1 linked into kiln (CGO_ENABLED=0, -s -w) made
// bin/kiln 72.1 MB instead of 16.6 MB and the module graph 925 modules instead of 255, and took
// half an hour to build on two cores; for five ecosystems this package adds 0.8 MB (debug/elf,
// debug/macho, debug/pe through debug/buildinfo) and no module. spdx/tools-golang is small
// (2 modules) but kiln writes a narrow subset of SPDX whose field order it wants to own, so it
// is only used by the tests, to read the golden documents back.
package sbom
