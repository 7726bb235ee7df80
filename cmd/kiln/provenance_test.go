package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/kiln-build/kiln/internal/testregistry"
)

// TestInspectAttestations: build --provenance=mode=max attaches SLSA provenance that
// `inspect --attestations` prints, without the secret build arg; the attested image still
// lists, inspects, saves, loads and runs as the image, FROM it works, and a plain build has none.
func TestInspectAttestations(t *testing.T) {
	requireContainers(t)
	root, ctxDir := busyboxRoot(t), t.TempDir()
	writeTree(t, ctxDir, map[string]string{
		"Buildfile": "FROM busybox\nARG GREETING\nARG DB_PASSWORD\nCOPY msg /msg\nCMD [\"cat\", \"/msg\"]\n",
		"msg":       "hello from an attested image\n",
	})
	ok(t, root, "build", "-q", "--provenance=mode=max", "--build-arg", "GREETING=hi", "--build-arg", "DB_PASSWORD=hunter2", "-t", "app", ctxDir)
	r := ok(t, root, "inspect", "--attestations", "app")
	var sts []struct {
		Type          string `json:"_type"`
		PredicateType string `json:"predicateType"`
		Predicate     struct {
			BuildDefinition struct {
				ExternalParameters struct {
					Request struct {
						Args map[string]string `json:"args"`
					} `json:"request"`
				} `json:"externalParameters"`
				ResolvedDependencies []struct {
					URI string `json:"uri"`
				} `json:"resolvedDependencies"`
			} `json:"buildDefinition"`
		} `json:"predicate"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &sts); err != nil || len(sts) != 1 {
		t.Fatalf("inspect --attestations printed %v (%v):\n%s", sts, err, r.stdout)
	}
	st := sts[0]
	if st.Type != "https://in-toto.io/Statement/v1" || st.PredicateType != "https://slsa.dev/provenance/v1" {
		t.Errorf("statement %s / %s", st.Type, st.PredicateType)
	}
	if st.Predicate.BuildDefinition.ExternalParameters.Request.Args["build-arg:GREETING"] != "hi" || strings.Contains(r.stdout, "hunter2") {
		t.Errorf("build args in provenance: %v", st.Predicate.BuildDefinition.ExternalParameters.Request.Args)
	}
	if deps := st.Predicate.BuildDefinition.ResolvedDependencies; len(deps) != 1 || !strings.HasPrefix(deps[0].URI, "pkg:docker/busybox@latest") {
		t.Errorf("resolved dependencies %+v", deps)
	}

	if rows := imageRows(t, root); len(rows) != 2 {
		t.Errorf("images lists %d rows, want busybox and app: %+v", len(rows), rows)
	}
	ok(t, root, "inspect", "app")
	if r := ok(t, root, "run", "--rm", "app"); r.stdout != "hello from an attested image\n" {
		t.Errorf("run of the attested image printed %q", r.stdout)
	}
	archive := filepath.Join(t.TempDir(), "app.tar")
	ok(t, root, "save", "-o", archive, "app")
	other := busyboxRoot(t)
	ok(t, other, "load", "-i", archive)
	if r := ok(t, other, "run", "--rm", "app"); r.stdout != "hello from an attested image\n" {
		t.Errorf("run of the loaded attested image printed %q", r.stdout)
	}
	writeTree(t, ctxDir, map[string]string{"Buildfile": "FROM app\nRUN cat /msg\n"})
	ok(t, root, "build", "-q", "-t", "child", ctxDir)
	if r := ok(t, root, "inspect", "--attestations", "child"); strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("a plain local build has attestations: %s", r.stdout)
	}
	if r := kiln(t, root, nil, "build", "--provenance=mode=huge", ctxDir); r.code != 2 || !strings.Contains(r.stderr, "mode=min|max") {
		t.Errorf("bad --provenance: exit %d\n%s", r.code, r.stderr)
	}
	if r := kiln(t, root, nil, "inspect", "--attestations", "nosuch"); r.code != 1 || !strings.Contains(r.stderr, "no such image") {
		t.Errorf("inspect --attestations of a missing image: exit %d\n%s", r.code, r.stderr)
	}
}

// TestBuildPushProvenance: build --push attaches mode=min provenance by default and pushes it
// as BuildKit does; kiln push of the attested tag carries it to another name too.
func TestBuildPushProvenance(t *testing.T) {
	addr := testregistry.Start(t)
	root, ctxDir := t.TempDir(), t.TempDir()
	writeTree(t, ctxDir, map[string]string{"Buildfile": "FROM scratch\nCOPY a /a\n", "a": "a"})
	ref := addr + "/team/prov:1"
	md := filepath.Join(t.TempDir(), "md.json")
	ok(t, root, "build", "-q", "--push", "-t", ref, "--metadata-file", md, ctxDir)
	ok(t, root, "push", ref, addr+"/team/prov:copy")
	var meta map[string]string
	raw, err := os.ReadFile(md)
	if err != nil || json.Unmarshal(raw, &meta) != nil {
		t.Fatalf("metadata file %s: %v", raw, err)
	}
	pushedRef, _ := name.ParseReference(ref, name.Insecure)
	if head, err := remote.Head(pushedRef); err != nil || meta["containerimage.digest"] != head.Digest.String() {
		t.Errorf("--metadata-file digest %s, the registry has %v (%v): want the pushed index, as buildx", meta["containerimage.digest"], head, err)
	}
	for _, tag := range []string{"1", "copy"} {
		r, err := name.ParseReference(addr+"/team/prov:"+tag, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := remote.Index(r)
		if err != nil {
			t.Fatalf("prov:%s is no index: %v", tag, err)
		}
		im, err := idx.IndexManifest()
		if err != nil || len(im.Manifests) != 2 || im.Manifests[1].Annotations["vnd.docker.reference.type"] != "attestation-manifest" {
			t.Fatalf("prov:%s index %+v (%v), want the image and its attestation manifest", tag, im, err)
		}
		att, err := idx.Image(im.Manifests[1].Digest)
		if err != nil {
			t.Fatal(err)
		}
		m, err := att.Manifest()
		if err != nil || len(m.Layers) != 1 || m.Layers[0].Annotations["in-toto.io/predicate-type"] != "https://slsa.dev/provenance/v1" {
			t.Errorf("prov:%s attestation manifest %+v (%v)", tag, m, err)
		}
	}
}

// TestBuildSBOM: build --sbom=true attaches an SPDX 2.3 document of the image's packages (here
// a dpkg database written by a RUN step), next to the provenance; an image without a package
// database gets an SBOM that says so; a bad --sbom value is a usage error.
func TestBuildSBOM(t *testing.T) {
	requireContainers(t)
	root, ctxDir := busyboxRoot(t), t.TempDir()
	status := "Package: hello\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.10-3\nMaintainer: Someone <s@example.org>\nDescription: greets\n\n"
	writeTree(t, ctxDir, map[string]string{
		"Buildfile": "FROM busybox\nRUN mkdir -p /var/lib/dpkg /etc && printf 'ID=debian\\nVERSION_ID=\"12\"\\n' > /etc/os-release\nCOPY status /var/lib/dpkg/status\n",
		"status":    status,
	})
	ok(t, root, "build", "-q", "--sbom=true", "--provenance=mode=min", "-t", "app", ctxDir)
	r := ok(t, root, "inspect", "--attestations", "app")
	var sts []struct {
		PredicateType string `json:"predicateType"`
		Predicate     struct {
			SPDXVersion string `json:"spdxVersion"`
			Packages    []struct {
				Name        string `json:"name"`
				VersionInfo string `json:"versionInfo"`
				External    []struct {
					Locator string `json:"referenceLocator"`
				} `json:"externalRefs"`
			} `json:"packages"`
		} `json:"predicate"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &sts); err != nil || len(sts) != 2 {
		t.Fatalf("want provenance and an SBOM, got %d (%v):\n%s", len(sts), err, r.stdout)
	}
	found := false
	for _, st := range sts {
		if st.PredicateType != "https://spdx.dev/Document" {
			continue
		}
		if st.Predicate.SPDXVersion != "SPDX-2.3" {
			t.Errorf("SBOM version %q", st.Predicate.SPDXVersion)
		}
		for _, p := range st.Predicate.Packages {
			for _, e := range p.External {
				if p.Name == "hello" && p.VersionInfo == "2.10-3" && strings.HasPrefix(e.Locator, "pkg:deb/debian/hello@2.10-3") {
					found = true
				}
			}
		}
	}
	if !found {
		t.Errorf("the SBOM does not list the dpkg package hello 2.10-3 with its PURL:\n%s", r.stdout)
	}
	if out := ok(t, root, "run", "--rm", "app", "cat", "/var/lib/dpkg/status").stdout; out != status {
		t.Errorf("run of the attested image: %q", out)
	}
	writeTree(t, ctxDir, map[string]string{"Buildfile": "FROM busybox\nCOPY status /s\n"})
	ok(t, root, "build", "-q", "--sbom=true", "-t", "bare", ctxDir)
	if r := ok(t, root, "inspect", "--attestations", "bare"); !strings.Contains(r.stdout, "https://spdx.dev/Document") || !strings.Contains(r.stdout, "no packages found") {
		t.Errorf("SBOM of an image without packages:\n%s", r.stdout)
	}
	if r := kiln(t, root, nil, "build", "--sbom=generator=x", ctxDir); r.code != 2 {
		t.Errorf("--sbom=generator=x: exit %d, %s", r.code, r.stderr)
	}
}
