// Package corpus defines kiln's malicious-layer corpus: hostile image archives (traversal, link
// escapes, whiteout tricks, special files where kiln reads, digest mismatches, bombs), each with
// the outcome kiln must show. The archives are committed in testdata/malicious; `go generate
// ./internal/corpus` rewrites them and a test checks they have not drifted from these definitions.
package corpus

//go:generate go run ./gen ../../testdata/malicious
