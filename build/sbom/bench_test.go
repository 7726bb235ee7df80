package sbom

import (
	"context"
	"io"
	"testing"
)

// BenchmarkScanLayers scans the Debian database (37 packages and their copyright files) and
// the Python and npm trees as two in-memory layers: the cost --sbom adds on top of reading the
// image's blobs.
func BenchmarkScanLayers(b *testing.B) {
	layers := []func() (io.ReadCloser, error){tarOf(b, "testdata/debian"), tarOf(b, "testdata/apps")}
	b.ReportAllocs()
	for b.Loop() {
		doc, err := ScanLayers(context.Background(), layers, testOptions("bench"))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := doc.MarshalSPDX(); err != nil {
			b.Fatal(err)
		}
	}
}
