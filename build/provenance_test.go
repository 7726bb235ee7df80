package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	"github.com/kiln-build/kiln/cache"
	"github.com/kiln-build/kiln/cache/layer"
)

// provenanceBuild runs a pipeline with a fixed SOURCE_DATE_EPOCH, a build arg, a secret-named
// build arg, a --secret and a label, and returns the image and its statements.
func provenanceBuild(t *testing.T, f *fixture, buildfile string, mode ProvenanceMode) (*Image, []cache.Statement) {
	t.Helper()
	f.write(map[string]string{"Buildfile": buildfile, "a": "a"})
	n, _ := cache.ParseName("app:1")
	epoch := time.Unix(1700000000, 0).UTC()
	po := PipelineOptions{Options: Options{ContextDir: f.dir, Store: f.store, Resolver: storeResolver{f.store}, Tags: []cache.Name{n},
		Epoch: &epoch, Compression: layer.Gzip, NoCache: true,
		BuildArgs: map[string]string{"VERSION": "2.0", "API_TOKEN": "sekrit-arg-value", "NPM_CONFIG": "s3cr3t-file-value"},
		Labels:    map[string]string{"team": "infra", "copied": "s3cr3t-file-value"},
		Secrets:   map[string][]byte{"npmrc": []byte("s3cr3t-file-value")}},
		Provenance: ProvenanceOptions{Mode: mode, Version: "v1.2.3"}}
	img, err := Pipeline(context.Background(), po)
	if err != nil {
		t.Fatal(err)
	}
	if img.Index == nil {
		t.Fatalf("mode %d: no attestations attached", mode)
	}
	sts, err := f.store.Attestations(*img.Index)
	if err != nil || len(sts) != 1 {
		t.Fatalf("attestations: %v, %v", sts, err)
	}
	return img, sts
}

// TestProvenanceGolden pins the whole statement of mode=min and mode=max for a multi-stage
// build (base image, COPY --from an image), and checks that with SOURCE_DATE_EPOCH a rebuild
// gives the same index byte for byte. go test -run TestProvenanceGolden -update rewrites them.
func TestProvenanceGolden(t *testing.T) {
	if goruntime.GOARCH != "amd64" {
		t.Skip("the golden documents name linux/amd64, the platform they were written on")
	}
	const bf = "FROM base AS build\nARG VERSION\nARG API_TOKEN\nCOPY a /a\nFROM scratch\nCOPY --from=build /a /b\nCOPY --from=base /etc/passwd /passwd\n"
	for _, tc := range []struct {
		mode ProvenanceMode
		file string
	}{{ProvenanceMin, "min.json"}, {ProvenanceMax, "max.json"}} {
		f := newFixture(t)
		img, sts := provenanceBuild(t, f, bf, tc.mode)
		got, err := json.MarshalIndent(sts[0], "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		golden := filepath.Join("testdata", "provenance", tc.file)
		if *update {
			if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if string(want) != string(got)+"\n" {
			t.Errorf("%s differs (rerun with -update if the change is meant):\n%s", golden, got)
		}
		again, _ := provenanceBuild(t, f, bf, tc.mode)
		if again.Index.Digest != img.Index.Digest {
			t.Errorf("%s: a rebuild with the same SOURCE_DATE_EPOCH gave index %s, then %s", tc.file, img.Index.Digest, again.Index.Digest)
		}
	}
}

// TestProvenanceModes: min keeps build args and labels out, max has them and the Buildfile;
// neither ever holds a secret's value (a --secret's, also passed as a build arg or label) or a
// secret-named build arg.
func TestProvenanceModes(t *testing.T) {
	const bf = "FROM base\nARG VERSION\nARG API_TOKEN\nCOPY a /a\n"
	f := newFixture(t)
	_, minSt := provenanceBuild(t, f, bf, ProvenanceMin)
	_, maxSt := provenanceBuild(t, f, bf, ProvenanceMax)
	minP, maxP := string(minSt[0].Predicate), string(maxSt[0].Predicate)
	for _, secret := range []string{"sekrit-arg-value", "s3cr3t-file-value", "API_TOKEN\":", "NPM_CONFIG", "label:copied"} {
		if strings.Contains(minP, secret) || strings.Contains(maxP, secret) {
			t.Errorf("provenance holds %q", secret)
		}
	}
	if strings.Contains(minP, "build-arg:") || strings.Contains(minP, "label:") || strings.Contains(minP, `"npmrc"`) {
		t.Errorf("mode=min has build args, labels or secret ids: %s", minP)
	}
	for _, want := range []string{`"build-arg:VERSION":"2.0"`, `"label:team":"infra"`, `"secrets":[{"id":"npmrc"}]`, `"instruction":"COPY a /a"`,
		`"data":"` + b64(bf) + `"`} {
		if !strings.Contains(maxP, want) {
			t.Errorf("mode=max lacks %s: %s", want, maxP)
		}
	}
	if minSt[0].PredicateType != PredicateSLSA1 || minSt[0].Type != cache.InTotoStatementV1 {
		t.Errorf("statement types %q %q", minSt[0].Type, minSt[0].PredicateType)
	}
}

func b64(s string) string {
	raw, _ := json.Marshal([]byte(s))
	return strings.Trim(string(raw), `"`)
}

// TestProvenanceDependencies: every ADD URL with its checksum and every git source with its
// commit is a resolved dependency (credentials removed), and a git checkout context gives vcs.
func TestProvenanceDependencies(t *testing.T) {
	gitURL := gitRepo(t)
	body := "tool\n"
	sum := sha256.Sum256([]byte(body))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(body)) }))
	defer srv.Close()
	f := newFixture(t)
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", f.dir}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@e", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@e")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	withCreds := strings.Replace(srv.URL, "http://", "http://user:hunter2@", 1)
	bf := "FROM base\nADD " + withCreds + "/tool.sh /tool.sh\nADD " + gitURL + "#next /src/\nCOPY a /a\n"
	f.write(map[string]string{"Buildfile": bf, "a": "a", "b": "b"})
	git("init", "-q", "-b", "main")
	git("add", ".")
	git("commit", "-q", "-m", "ctx")
	git("remote", "add", "origin", "https://ci:tok3n@git.example/app.git")
	head := git("rev-parse", "HEAD")
	nextCommit := strings.Fields(gitLsRemote(t, gitURL, "next"))[0]

	_, sts := provenanceBuild(t, f, bf, ProvenanceMin)
	p := string(sts[0].Predicate)
	if strings.Contains(p, "hunter2") || strings.Contains(p, "tok3n") {
		t.Errorf("credentials in provenance: %s", p)
	}
	for _, want := range []string{
		`{"uri":"` + srv.URL + `/tool.sh","digest":{"sha256":"` + hex.EncodeToString(sum[:]) + `"}}`,
		`{"uri":"` + gitURL + `#next","digest":{"sha1":"` + nextCommit + `"}}`,
		`"uri":"pkg:docker/base@latest?platform=linux%2F`,
		`"vcs":{"revision":"` + head + `","source":"https://git.example/app.git"}`,
	} {
		if !strings.Contains(p, want) {
			t.Errorf("provenance lacks %s:\n%s", want, p)
		}
	}
	// A change to a tracked file marks the revision dirty.
	f.write(map[string]string{"b": "changed"})
	_, sts = provenanceBuild(t, f, bf, ProvenanceMin)
	if !strings.Contains(string(sts[0].Predicate), `"revision":"`+head+`-dirty"`) {
		t.Errorf("a dirty checkout's revision is not marked: %s", sts[0].Predicate)
	}
}

func gitLsRemote(t *testing.T, url, ref string) string {
	t.Helper()
	out, err := exec.Command("git", "ls-remote", url, ref).Output()
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestProvenanceDefault follows BuildKit: none for a local build, min once pushed or exported,
// and --provenance=false wins; the store keeps an attested image runnable as the image.
func TestProvenanceDefault(t *testing.T) {
	f := newFixture(t)
	f.write(map[string]string{"Buildfile": "FROM base\nCOPY a /a\n", "a": "a"})
	n, _ := cache.ParseName("app")
	run := func(po PipelineOptions) *Image {
		t.Helper()
		po.Options = Options{ContextDir: f.dir, Store: f.store, Resolver: storeResolver{f.store}, Tags: []cache.Name{n}}
		img, err := Pipeline(context.Background(), po)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	export := func(context.Context, *Image, []cache.Name) error { return nil }
	if img := run(PipelineOptions{}); img.Index != nil {
		t.Error("a plain local build got provenance")
	}
	if img := run(PipelineOptions{Export: export, Provenance: ProvenanceOptions{Mode: ProvenanceOff}}); img.Index != nil {
		t.Error("--provenance=false still attached provenance")
	}
	img := run(PipelineOptions{Export: export})
	if img.Index == nil {
		t.Fatal("an exported build got no provenance")
	}
	desc, _, err := f.store.Lookup("app")
	if err != nil || desc.Digest != img.Index.Digest {
		t.Fatalf("app is %v (%v), want the index %s", desc.Digest, err, img.Index.Digest)
	}
	stored, err := f.store.Image(desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := stored.Digest(); d != img.Manifest.Digest {
		t.Errorf("the attested index opens as %s, want the image %s", d, img.Manifest.Digest)
	}
	if id, err := f.store.ImageID(desc); err != nil || id != img.ID {
		t.Errorf("image ID of the attested image %s (%v), want the build's %s", id, err, img.ID)
	}
	if _, _, err := f.store.Lookup(img.ID.Hex[:12]); err != nil {
		t.Errorf("the ID the build printed does not find the image: %v", err)
	}
}

func TestParseProvenance(t *testing.T) {
	for v, want := range map[string]ProvenanceMode{"true": ProvenanceMin, "false": ProvenanceOff, "mode=min": ProvenanceMin,
		"mode=max": ProvenanceMax, "mode=max,version=v1": ProvenanceMax, "1": ProvenanceMin} {
		if got, _, err := ParseProvenance(v); err != nil || got != want {
			t.Errorf("ParseProvenance(%q) = %v, %v; want %v", v, got, err, want)
		}
	}
	if _, id, err := ParseProvenance("mode=min,builder-id=https://ci.example/run/1"); err != nil || id != "https://ci.example/run/1" {
		t.Errorf("builder-id: %q %v", id, err)
	}
	for _, bad := range []string{"mode=full2", "version=v0.2", "yes"} {
		if _, _, err := ParseProvenance(bad); err == nil || !strings.Contains(err.Error(), "mode=min|max") {
			t.Errorf("ParseProvenance(%q) = %v, want an error naming the syntax", bad, err)
		}
	}
}

func TestSecretArgName(t *testing.T) {
	for name, want := range map[string]bool{"API_TOKEN": true, "db_password": true, "AUTH": true, "GITHUB_TOKEN": true,
		"VERSION": false, "PUBLIC_KEY": false, "KEY_FILE": false, "MONKEY": false, "TOKENIZER": false} {
		if got := SecretArgName(name); got != want {
			t.Errorf("SecretArgName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestImagePURL(t *testing.T) {
	for ref, want := range map[string]string{
		"alpine:3.17":                "pkg:docker/alpine@3.17?platform=linux%2Famd64",
		"docker.io/library/alpine":   "pkg:docker/alpine@latest?platform=linux%2Famd64",
		"localhost:5000/team/app:1":  "pkg:docker/localhost:5000/team/app@1?platform=linux%2Famd64",
		"user/app@sha256:" + zeros64: "pkg:docker/user/app?digest=sha256%3A" + zeros64 + "&platform=linux%2Famd64",
		"sha256:" + zeros64:          "sha256:" + zeros64,
	} {
		if got := imagePURL(ref, "linux/amd64"); got != want {
			t.Errorf("imagePURL(%q) = %s, want %s", ref, got, want)
		}
	}
}

var zeros64 = strings.Repeat("0", 64)
