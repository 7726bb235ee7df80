package main

import (
	"strings"
	"testing"
)

// A docker verb kiln lacks exits 2 naming the alternative; any other unknown verb exits 2 too.
func TestDockerVerbsKilnLacks(t *testing.T) {
	root := t.TempDir()
	for _, args := range [][]string{{"checkpoint", "create", "x"}, {"events"}, {"swarm", "init"}} {
		r := kiln(t, root, nil, args...)
		if r.code != 2 || !strings.Contains(r.stderr, `"`+args[0]+`" is a docker command kiln does not have; use `) {
			t.Errorf("kiln %s: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
		}
	}
	if r := kiln(t, root, nil, "frobnicate"); r.code != 2 || !strings.Contains(r.stderr, `unknown command "frobnicate"`) {
		t.Errorf("unknown verb: exit %d %s", r.code, r.stderr)
	}
	if help := ok(t, root, "--help").stdout; strings.Contains(help, "checkpoint") || !strings.Contains(help, "history") {
		t.Errorf("help lists the missing verbs or lacks the new ones:\n%s", help)
	}
}
