package build

import (
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ApplyChanges reads variables as docker's commit does: from the config's ENV before each
// instruction (one ENV's own pairs do not see each other), and shell forms go through the
// config's SHELL.
func TestApplyChanges(t *testing.T) {
	cf := &v1.ConfigFile{Config: v1.Config{Env: []string{"A=old"}, Shell: []string{"/bin/bash", "-ec"}}}
	err := ApplyChanges(cf, []string{"ENV A=new B=$A", "ENV C=$A", "CMD echo $HOME", "LABEL \\\n  x=1"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"A=new", "B=old", "C=new"}; !slices.Equal(cf.Config.Env, want) {
		t.Errorf("env %q, want %q", cf.Config.Env, want)
	}
	if want := []string{"/bin/bash", "-ec", "echo $HOME"}; !slices.Equal(cf.Config.Cmd, want) {
		t.Errorf("cmd %q, want %q", cf.Config.Cmd, want)
	}
	if cf.Config.Labels["x"] != "1" {
		t.Errorf("labels %v", cf.Config.Labels)
	}
	for change, msg := range map[string]string{
		"MAINTAINER me":  "MAINTAINER is not a valid change command",
		"SHELL [\"sh\"]": "SHELL is not a valid change command",
		"ARG X":          "ARG is not a valid change command",
		"ENV X=${Y:?no}": `--change ENV: failed to process "${Y:?no}": Y: no`,
	} {
		if err := ApplyChanges(&v1.ConfigFile{}, []string{change}); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: %v, want %q", change, err, msg)
		}
	}
}
