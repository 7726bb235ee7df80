package container

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata golden files")

func TestSystemdUnitGolden(t *testing.T) {
	c := &Container{Config: Config{ID: strings.Repeat("ab", 32), Name: "web", Restart: RestartPolicy{Name: RestartUnlessStopped}}}
	twenty := 20
	c.StopTimeout = &twenty
	kiln := []string{"/usr/local/bin/kiln", "--root", "/srv/kiln store", "--runtime", "crun"}
	name, unit, err := SystemdUnit(c, UnitOptions{Kiln: kiln, UseName: true})
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", name)
	if *updateGolden {
		if err := os.WriteFile(golden, unit, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(unit) != string(want) {
		t.Errorf("unit %s:\n%s\nwant:\n%s", name, unit, want)
	}

	// By id, with the policy given and the default stop timeout.
	c.Restart, c.StopTimeout = RestartPolicy{Name: RestartNo}, nil
	name, unit, err = SystemdUnit(c, UnitOptions{Kiln: []string{"/k"}, RestartPolicy: "on-abnormal"})
	if err != nil || name != "container-"+c.ID+".service" {
		t.Fatalf("by id: %s, %v", name, err)
	}
	for _, line := range []string{"Restart=on-abnormal\n", "ExecStart=/k start -a " + c.ID + "\n", "ExecStop=/k stop -t 10 " + c.ID + "\n", "TimeoutStopSec=70\n"} {
		if !strings.Contains(string(unit), line) {
			t.Errorf("unit lacks %q:\n%s", line, unit)
		}
	}
	if _, _, err := SystemdUnit(c, UnitOptions{Kiln: []string{"/k"}, RestartPolicy: "sometimes"}); err == nil {
		t.Error("an unknown --restart-policy was accepted")
	}
	c.Name = ""
	if _, _, err := SystemdUnit(c, UnitOptions{Kiln: []string{"/k"}, UseName: true}); err == nil {
		t.Error("--name of a nameless container was accepted")
	}
	c.AutoRemove = true
	if _, _, err := SystemdUnit(c, UnitOptions{Kiln: []string{"/k"}}); err == nil {
		t.Error("a --rm container was accepted")
	}
}

func TestSystemdQuote(t *testing.T) {
	got := systemdQuote([]string{"/bin/kiln", "a b", `q"x`, "100%", "$HOME", ""})
	if want := `/bin/kiln "a b" "q\"x" 100%% $$HOME ""`; got != want {
		t.Errorf("quoted %s, want %s", got, want)
	}
}
