package container

import (
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestArgvDockerRules pins docker's ENTRYPOINT/CMD rules for `run IMAGE [ARGS]`.
func TestArgvDockerRules(t *testing.T) {
	str := func(s string) *string { return &s }
	img := v1.Config{Entrypoint: []string{"/ep"}, Cmd: []string{"default"}}
	for _, c := range []struct {
		cfg  v1.Config
		o    ImageOverrides
		want []string
	}{
		{img, ImageOverrides{}, []string{"/ep", "default"}},
		{img, ImageOverrides{Args: []string{"a", "b"}}, []string{"/ep", "a", "b"}},
		{img, ImageOverrides{Entrypoint: str("/other")}, []string{"/other"}}, // --entrypoint drops CMD
		{img, ImageOverrides{Entrypoint: str(""), Args: []string{"sh"}}, []string{"sh"}},
		{v1.Config{Cmd: []string{"sh", "-c", "x"}}, ImageOverrides{}, []string{"sh", "-c", "x"}},
	} {
		got, err := argv(c.cfg, c.o)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("argv(%+v, %+v) = %q, %v; want %q", c.cfg, c.o, got, err, c.want)
		}
	}
	if _, err := argv(v1.Config{}, ImageOverrides{}); err == nil || !strings.Contains(err.Error(), "no command specified") {
		t.Errorf("an image with neither ENTRYPOINT nor CMD and no command: %v", err)
	}
}

func TestMergeEnvLaterWins(t *testing.T) {
	got := MergeEnv([]string{"PATH=/bin", "A=0"}, []string{"B=1", "A=2"})
	if want := []string{"PATH=/bin", "A=2", "B=1"}; !slices.Equal(got, want) {
		t.Errorf("MergeEnv = %q, want %q", got, want)
	}
}
