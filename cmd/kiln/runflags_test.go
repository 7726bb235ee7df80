package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/kiln-build/kiln/container"
	"github.com/kiln-build/kiln/registry"
)

func TestParseVolume(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		in      string
		want    mountFlag
		wantErr string
	}{
		{in: dir + ":/data", want: mountFlag{source: dir, target: "/data"}},
		{in: dir + ":/data/:ro", want: mountFlag{source: dir, target: "/data", readOnly: true}},
		{in: dir + ":/data:rw", want: mountFlag{source: dir, target: "/data"}},
		{in: "data", wantErr: "HOST-PATH:CONTAINER-PATH"},
		{in: "/var/lib/x/", want: mountFlag{volume: true, target: "/var/lib/x"}},
		{in: dir + ":data", wantErr: "must be absolute"},
		{in: dir + ":/d:xx", wantErr: `unknown option "xx"`},
		{in: "myvol:/d:ro", want: mountFlag{volume: true, source: "myvol", target: "/d", readOnly: true}},
		{in: dir + "/missing:/d", wantErr: "does not exist"},
	} {
		got, err := parseVolume(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parseVolume(%q) error %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseVolume(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseMountAndTmpfs(t *testing.T) {
	dir := t.TempDir()
	m, err := parseMount("type=bind,source=" + dir + ",target=/x,readonly")
	if err != nil || !m.readOnly || m.source != dir || m.target != "/x" {
		t.Errorf("bind: %+v %v", m, err)
	}
	m, err = parseMount("type=tmpfs,target=/t,tmpfs-size=1m")
	if err != nil || !m.tmpfs || !reflect.DeepEqual(m.options, []string{"size=1m"}) {
		t.Errorf("tmpfs: %+v %v", m, err)
	}
	m, err = parseMount("type=volume,source=data,target=/x,volume-nocopy")
	if err != nil || !m.volume || !m.noCopy || m.source != "data" {
		t.Errorf("volume: %+v %v", m, err)
	}
	for _, bad := range []string{"type=bind,source=" + dir + ",target=/x,volume-nocopy", "type=bind,target=/x", "type=tmpfs,source=/a,target=/x", "type=bind,source=" + dir + ",target=/x,bogus=1"} {
		if _, err := parseMount(bad); err == nil {
			t.Errorf("parseMount(%q) accepted", bad)
		}
	}
	m, err = parseTmpfs("/scratch:size=64m,mode=1777")
	if err != nil || m.target != "/scratch" || len(m.options) != 2 {
		t.Errorf("--tmpfs: %+v %v", m, err)
	}
}

func TestParseMemory(t *testing.T) {
	for in, want := range map[string]int64{"": 0, "64m": 64 << 20, "1g": 1 << 30, "7340032": 7 << 20} {
		if got, err := parseMemory("--memory", in); err != nil || got != want {
			t.Errorf("parseMemory(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"1x", "-5m", "1k"} {
		if _, err := parseMemory("--memory", bad); err == nil {
			t.Errorf("parseMemory(%q) accepted", bad)
		}
	}
}

func TestEnvFilesAndMerge(t *testing.T) {
	t.Setenv("KILN_TEST_FROM_HOST", "host")
	p := filepath.Join(t.TempDir(), "env")
	content := "# comment\nA=1\n\nKILN_TEST_FROM_HOST\nKILN_TEST_UNSET_VAR\nB=x=y\n"
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	env, err := readEnvFiles([]string{p})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"A=1", "KILN_TEST_FROM_HOST=host", "B=x=y"}
	if !reflect.DeepEqual(env, want) {
		t.Errorf("env file: %q, want %q", env, want)
	}
	got := container.MergeEnv([]string{"PATH=/bin", "A=0"}, env, []string{"A=2"})
	if !reflect.DeepEqual(got, []string{"PATH=/bin", "A=2", "KILN_TEST_FROM_HOST=host", "B=x=y"}) {
		t.Errorf("MergeEnv: %q", got)
	}
	if _, err := readEnvFiles([]string{filepath.Join(t.TempDir(), "none")}); err == nil {
		t.Error("missing env file accepted")
	}
}

func TestBlobBars(t *testing.T) {
	var out strings.Builder
	report := newBlobBars(&out, "Pulling")
	h := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}
	report(registry.Event{Digest: h, Kind: registry.EventStart, Total: 100})
	report(registry.Event{Digest: h, Kind: registry.EventDone, Complete: 100, Total: 100})
	if !strings.Contains(out.String(), "abababababab: Pulling [") || !strings.Contains(out.String(), "\x1b[1A") ||
		!strings.HasSuffix(out.String(), "abababababab: Pulling complete\n") {
		t.Errorf("bars: %q", out.String())
	}
	if got := bar("Pushing", 50, 100); !strings.Contains(got, "[===============>              ] 50B/100B") {
		t.Errorf("bar: %q", got)
	}
}
