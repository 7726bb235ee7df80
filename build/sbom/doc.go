// Package sbom makes an SPDX 2.3 JSON software bill of materials of an image's file tree.
package sbom
