package sbom

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdxlib"
)

// TestToolsGolangReadsGolden: SPDX's own Go library reads every golden document as SPDX 2.3,
// finds the image as what it describes, and every relationship's ends in it.
func TestToolsGolangReadsGolden(t *testing.T) {
	goldens, _ := filepath.Glob("testdata/golden/*.spdx.json")
	if len(goldens) < 4 {
		t.Fatalf("only %d golden documents", len(goldens))
	}
	for _, name := range goldens {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := spdxjson.Read(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if doc.SPDXVersion != "SPDX-2.3" {
			t.Errorf("%s: version %q", name, doc.SPDXVersion)
		}
		if err := spdxlib.ValidateDocument(doc); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		described, err := spdxlib.GetDescribedPackageIDs(doc)
		if err != nil || len(described) != 1 || string(described[0]) != imageID[len("SPDXRef-"):] {
			t.Errorf("%s: describes %v (%v), want the image", name, described, err)
		}
		for _, p := range doc.Packages[1:] {
			if len(p.PackageExternalReferences) != 1 || p.PackageExternalReferences[0].RefType != "purl" {
				t.Errorf("%s: package %s has no purl", name, p.PackageName)
			}
		}
	}
}
