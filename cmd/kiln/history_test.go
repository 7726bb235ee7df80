package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// history prints docker's columns, newest step first, the image id on the newest only;
// --format takes json and Go templates; -q the ids.
func TestHistory(t *testing.T) {
	root, ctxDir := t.TempDir(), t.TempDir()
	long := strings.Repeat("x", 60)
	writeTree(t, ctxDir, map[string]string{
		"Buildfile": "FROM scratch\nCOPY a.txt /a.txt\nENV LONG=" + long + "\n",
		"a.txt":     "alpha\n",
	})
	ok(t, root, "build", "--progress=plain", "-t", "demo", ctxDir)
	id := shortID(imageRows(t, root)[0].ID)
	r := ok(t, root, "history", "demo")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !regexp.MustCompile(`^IMAGE +CREATED +CREATED BY +SIZE +COMMENT$`).MatchString(lines[0]) {
		t.Fatalf("history:\n%s", r.stdout)
	}
	if !strings.HasPrefix(lines[1], id+" ") || !strings.Contains(lines[1], "ENV LONG=xxx") || !strings.Contains(lines[1], "…") ||
		!strings.HasPrefix(lines[2], "<missing> ") || !strings.Contains(lines[2], "COPY") {
		t.Fatalf("history rows:\n%s", r.stdout)
	}
	if r := ok(t, root, "history", "--no-trunc", "demo"); !strings.Contains(r.stdout, long) || !strings.Contains(r.stdout, "sha256:") {
		t.Fatalf("history --no-trunc:\n%s", r.stdout)
	}
	if r := ok(t, root, "image", "history", "-q", "demo"); r.stdout != id+"\n<missing>\n" {
		t.Fatalf("image history -q: %q", r.stdout)
	}
	if r := ok(t, root, "history", "--format", "{{.ID}}|{{.Size}}", "demo"); r.stdout != id+"|0B\n<missing>|"+strings.Split(r.stdout, "|")[2] {
		t.Fatalf("history --format template: %q", r.stdout)
	}
	if r := ok(t, root, "history", "--format", `table {{.ID}}\t{{.CreatedBy}}`, "demo"); !regexp.MustCompile(`^IMAGE +CREATED BY\n`).MatchString(r.stdout) {
		t.Fatalf("history --format table: %q", r.stdout)
	}
	var row historyRow
	if err := json.Unmarshal([]byte(strings.Split(ok(t, root, "history", "--format", "json", "demo").stdout, "\n")[0]), &row); err != nil || row.ID != id {
		t.Fatalf("history --format json: %+v %v", row, err)
	}
	if r := kiln(t, root, nil, "history", "--format", "{{.ID", "demo"); r.code != 2 {
		t.Errorf("bad template: exit %d %s", r.code, r.stderr)
	}
	if r := kiln(t, root, nil, "history", "nope"); r.code != 1 || !strings.Contains(r.stderr, "nope") {
		t.Errorf("history of a missing image: exit %d %s", r.code, r.stderr)
	}
}
