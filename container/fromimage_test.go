package container

import (
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestCommandDockerRules pins docker's ENTRYPOINT/CMD rules for `run IMAGE [ARGS]`.
func TestCommandDockerRules(t *testing.T) {
	str := func(s string) *string { return &s }
	img := v1.Config{Entrypoint: []string{"/ep"}, Cmd: []string{"default"}}
	for _, c := range []struct {
		cfg v1.Config
		o   ImageOverrides
		ep  []string
		cmd []string
	}{
		{img, ImageOverrides{}, []string{"/ep"}, []string{"default"}},
		{img, ImageOverrides{Args: []string{"a", "b"}}, []string{"/ep"}, []string{"a", "b"}},
		{img, ImageOverrides{Entrypoint: str("/other")}, []string{"/other"}, nil}, // --entrypoint drops CMD
		{img, ImageOverrides{Entrypoint: str(""), Args: []string{"sh"}}, nil, []string{"sh"}},
		{v1.Config{Cmd: []string{"sh", "-c", "x"}}, ImageOverrides{}, nil, []string{"sh", "-c", "x"}},
	} {
		ep, cmd, err := command(c.cfg, c.o)
		if err != nil || !slices.Equal(ep, c.ep) || !slices.Equal(cmd, c.cmd) {
			t.Errorf("command(%+v, %+v) = %q %q, %v; want %q %q", c.cfg, c.o, ep, cmd, err, c.ep, c.cmd)
		}
	}
	if _, _, err := command(v1.Config{}, ImageOverrides{}); err == nil || !strings.Contains(err.Error(), "no command specified") {
		t.Errorf("an image with neither ENTRYPOINT nor CMD and no command: %v", err)
	}
}

func TestMergeEnvLaterWins(t *testing.T) {
	got := MergeEnv([]string{"PATH=/bin", "A=0"}, []string{"B=1", "A=2"})
	if want := []string{"PATH=/bin", "A=2", "B=1"}; !slices.Equal(got, want) {
		t.Errorf("MergeEnv = %q, want %q", got, want)
	}
}
