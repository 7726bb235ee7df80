package build

import (
	"strings"
	"testing"
)

func TestExplainNamesWhatChanged(t *testing.T) {
	f := newFixture(t)
	r := &fakeRunner{}
	f.write(map[string]string{"src/a.go": "a", "src/b.go": "b"})
	bf := "FROM base\nARG MODE=dev\nRUN write /x x\nCOPY src/ /src/\n"
	explain := func(args map[string]string) map[string]string {
		t.Helper()
		_, ev, err := f.build(bf, func(o *Options) { o.Runner, o.Explain, o.BuildArgs = r, true, args })
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, e := range ev.all {
			if e.Kind == EventExplain {
				out[e.Name] = string(e.Data)
			}
		}
		return out
	}
	if got := explain(nil); !strings.Contains(got["[2/3] RUN write /x x"], "new step") {
		t.Errorf("first build: %v", got)
	}
	if got := explain(nil); len(got) != 0 {
		t.Errorf("no-op rebuild explained misses: %v", got)
	}
	f.write(map[string]string{"src/b.go": "changed", "src/c.go": "new"})
	got := explain(nil)
	if len(got) != 1 || got["[3/3] COPY src/ /src/"] != "file src/b.go changed; file src/c.go added" {
		t.Errorf("after editing the context: %v", got)
	}
	got = explain(map[string]string{"MODE": "prod"})
	if !strings.Contains(got["[2/3] RUN write /x x"], "variable MODE changed") ||
		!strings.Contains(got["[3/3] COPY src/ /src/"], "the step before it changed") {
		t.Errorf("after changing a build arg: %v", got)
	}
	if strings.Contains(strings.Join(mapValues(got), " "), "prod") {
		t.Error("--explain printed a variable's value")
	}
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}
