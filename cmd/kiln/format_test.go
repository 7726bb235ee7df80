package main

import (
	"regexp"
	"strings"
	"testing"
)

// images and ps share one --format (json, templates, table TEMPLATE) and one --filter.
func TestFormatAndFilter(t *testing.T) {
	requireContainers(t)
	root, ctxDir := busyboxRoot(t), t.TempDir()
	writeTree(t, ctxDir, map[string]string{"Buildfile": "FROM scratch\nLABEL tier=web\n"})
	ok(t, root, "build", "--progress=plain", "-t", "labelled:v1", ctxDir)

	if r := ok(t, root, "images", "--format", "{{.Repository}}:{{.Tag}}"); r.stdout != "busybox:latest\nlabelled:v1\n" {
		t.Errorf("images template: %q", r.stdout)
	}
	if r := ok(t, root, "images", "--format", `table {{.Repository}}\t{{.ID}}`); !regexp.MustCompile(`^REPOSITORY +IMAGE ID\nbusybox +[0-9a-f]{12}\n`).MatchString(r.stdout) {
		t.Errorf("images table template: %q", r.stdout)
	}
	if r := ok(t, root, "images", "--format", "{{json .}}", "--filter", "label=tier=web"); !strings.HasPrefix(r.stdout, `{"ID":"`) || !strings.Contains(r.stdout, `"Repository":"labelled"`) || strings.Count(r.stdout, "\n") != 1 {
		t.Errorf("images label filter + json: %q", r.stdout)
	}
	for filter, want := range map[string]string{"reference=busy*": "busybox\n", "label=tier": "labelled\n", "label=tier=db": "",
		"dangling=true": "", "dangling=false": "busybox\nlabelled\n"} {
		if r := ok(t, root, "images", "--format", "{{.Repository}}", "--filter", filter); r.stdout != want {
			t.Errorf("images --filter %s: %q, want %q", filter, r.stdout, want)
		}
	}
	if r := kiln(t, root, nil, "images", "--filter", "colour=red"); r.code != 2 || !strings.Contains(r.stderr, `invalid filter "colour"`) {
		t.Errorf("unknown filter: exit %d %s", r.code, r.stderr)
	}

	kiln(t, root, nil, "run", "--name", "old", "busybox", "sh", "-c", "exit 4")
	ok(t, root, "run", "-d", "--name", "up", "busybox", "sleep", "300")
	t.Cleanup(func() { kiln(t, root, nil, "rm", "-f", "up") })
	if r := ok(t, root, "ps", "--format", "{{.Names}} {{.State}}"); r.stdout != "up running\n" {
		t.Errorf("ps template: %q", r.stdout)
	}
	if r := ok(t, root, "ps", "--format", `table {{.Names}}\t{{.Status}}`); !regexp.MustCompile(`^NAMES +STATUS\nup +Up `).MatchString(r.stdout) {
		t.Errorf("ps table template: %q", r.stdout)
	}
	for filter, want := range map[string]string{"status=exited": "old\n", "exited=4": "old\n", "exited=0": "", "name=u": "up\n",
		"ancestor=busybox": "up\n", "since=old": "up\n", "before=up": ""} {
		if r := ok(t, root, "ps", "--format", "{{.Names}}", "--filter", filter); r.stdout != want {
			t.Errorf("ps --filter %s: %q, want %q", filter, r.stdout, want)
		}
	}
	if r := ok(t, root, "ps", "-a", "--format", "{{.Names}}", "--filter", "before=up"); r.stdout != "old\n" {
		t.Errorf("ps -a --filter before=up: %q", r.stdout)
	}
	if r := ok(t, root, "ps", "-n", "1", "--format", "{{.Names}}"); r.stdout != "up\n" {
		t.Errorf("ps -n 1: %q", r.stdout)
	}
	if r := ok(t, root, "ps", "--last", "2", "--format", "{{.Names}}"); r.stdout != "up\nold\n" {
		t.Errorf("ps --last 2: %q", r.stdout)
	}
	if r := ok(t, root, "ps", "-l", "-q"); len(strings.TrimSpace(r.stdout)) != 12 {
		t.Errorf("ps -l -q: %q", r.stdout)
	}
	ok(t, root, "exec", "up", "sh", "-c", "head -c 5000 /dev/zero > /blob")
	if r := ok(t, root, "ps", "-s"); !regexp.MustCompile(`NAMES +SIZE\n.* up +5(\.\d+)?kB \(virtual 1\.\d+MB\)\n`).MatchString(r.stdout) {
		t.Errorf("ps -s: %q", r.stdout)
	}
	if r := kiln(t, root, nil, "ps", "--format", "{{.Nope"); r.code != 2 {
		t.Errorf("bad template: exit %d", r.code)
	}
}

// inspect -f renders each object through a template, docker's way.
func TestInspectFormat(t *testing.T) {
	root := t.TempDir()
	tagRandomImage(t, root, "app")
	r := ok(t, root, "inspect", "-f", "{{len .Layers}} {{.Size}}", "app")
	if !regexp.MustCompile(`^1 \d+\n$`).MatchString(r.stdout) {
		t.Errorf("inspect -f: %q", r.stdout)
	}
	if r := ok(t, root, "image", "inspect", "--format", "{{json .RootFS}}", "app"); !strings.HasPrefix(r.stdout, `{"`) {
		t.Errorf("inspect --format json: %q", r.stdout)
	}
}
