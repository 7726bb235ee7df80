package build

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// stepRecord is what --explain remembers of one vertex of the previous build of the same
// Buildfile and target: enough to name the input that changed when its key changes.
type stepRecord struct {
	Key    string            `json:"key"`
	Parent string            `json:"parent,omitempty"`
	Deps   []string          `json:"deps,omitempty"`
	Inputs map[string]string `json:"inputs"`
	Files  map[string]string `json:"files,omitempty"` // COPY from the context: path → content digest
}

// explainer compares this build's vertices with the last build's.
type explainer struct {
	state StateStore
	name  string                // the state file for this Buildfile and target
	prev  map[string]stepRecord // by stepID
	ids   map[*Vertex]string
}

// newExplainer prepares to compare with the previous build; load reads that build's steps
// (only --explain needs them). A missing or unreadable record means nothing to compare with.
func newExplainer(state StateStore, g *Graph, buildfile, target string, load bool) *explainer {
	sum := sha256.Sum256([]byte(buildfile + "\x00" + target))
	e := &explainer{state: state, name: "explain-" + hex.EncodeToString(sum[:8]) + ".json",
		prev: map[string]stepRecord{}, ids: stepIDs(g)}
	if state == nil || !load {
		return e
	}
	if data, err := state.ReadState(e.name); err == nil {
		_ = json.Unmarshal(data, &e.prev)
	}
	return e
}

// stepIDs names each vertex by its stage and its position among the stage's vertices, which
// survives edits to the instruction itself.
func stepIDs(g *Graph) map[*Vertex]string {
	ids := map[*Vertex]string{}
	count := map[int]int{}
	for _, v := range g.Vertices {
		count[v.Stage]++
		ids[v] = fmt.Sprintf("%d#%d", v.Stage, count[v.Stage])
	}
	return ids
}

func record(v *Vertex) stepRecord {
	r := stepRecord{Key: v.Key, Inputs: map[string]string{}}
	if v.Parent != nil {
		r.Parent = v.Parent.Key
	}
	for _, d := range v.Deps {
		r.Deps = append(r.Deps, d.Key)
	}
	for _, in := range v.key.inputs {
		r.Inputs[in.Name] = in.Value
	}
	if v.key.files != nil {
		r.Files = v.key.files()
	}
	return r
}

// save remembers this build's steps for the next --explain. A small sum of the keys
// written beside the record lets a no-op rebuild skip encoding every copied file's digest.
func (e *explainer) save(g *Graph) error {
	if e.state == nil {
		return nil
	}
	h := sha256.New()
	for _, v := range g.Vertices {
		h.Write([]byte(e.ids[v] + "=" + v.Key + "\n"))
	}
	keys := []byte(hex.EncodeToString(h.Sum(nil)))
	sumName := strings.TrimSuffix(e.name, ".json") + ".sum"
	if old, err := e.state.ReadState(sumName); err == nil && string(old) == string(keys) {
		return nil
	}
	out := map[string]stepRecord{}
	for _, v := range g.Vertices {
		if !v.key.uncached {
			out[e.ids[v]] = record(v)
		}
	}
	data, err := json.Marshal(out)
	if err != nil {
		return err
	}
	if err := e.state.WriteState(e.name, data); err != nil {
		return err
	}
	return e.state.WriteState(sumName, keys)
}

// why says what made v miss the cache, compared with the previous build.
func (e *explainer) why(v *Vertex) string {
	prev, ok := e.prev[e.ids[v]]
	switch {
	case !ok:
		return "new step: the previous build had no step here"
	case prev.Key == v.Key:
		return "same inputs as the previous build, but its cache entry is gone (pruned, or built with --no-cache)"
	}
	cur := record(v)
	var reasons []string
	if v.Parent != nil && prev.Parent != v.Parent.Key {
		what := "the step before it changed"
		if v.Parent.key.kind == SourceOp {
			what = "the base image changed"
		}
		reasons = append(reasons, what)
	}
	if strings.Join(prev.Deps, ",") != strings.Join(cur.Deps, ",") {
		reasons = append(reasons, "the stage or image it copies from changed")
	}
	reasons = append(reasons, inputChanges(prev.Inputs, cur.Inputs)...)
	if prev.Inputs["context"] != cur.Inputs["context"] && cur.Inputs["context"] != "" {
		reasons = append(reasons, fileChanges(prev.Files, cur.Files)...)
	}
	if len(reasons) == 0 {
		return "its cache key changed"
	}
	return strings.Join(reasons, "; ")
}

// inputChanges names changed inputs; values of variables are not shown, they may be secret.
func inputChanges(prev, cur map[string]string) []string {
	var names []string
	for k, v := range cur {
		if p, ok := prev[k]; !ok || p != v {
			names = append(names, k)
		}
	}
	for k := range prev {
		if _, ok := cur[k]; !ok {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	var out []string
	for _, n := range names {
		switch {
		case n == "context":
			// listed file by file
		case strings.HasPrefix(n, "env:"):
			out = append(out, fmt.Sprintf("variable %s changed (ENV or ARG)", strings.TrimPrefix(n, "env:")))
		case n == "args":
			out = append(out, "the command changed")
		default:
			out = append(out, fmt.Sprintf("%s changed", n))
		}
	}
	return out
}

// fileChanges lists up to ten changed, added or removed files of a COPY.
func fileChanges(prev, cur map[string]string) []string {
	var out []string
	for _, n := range sortedKeys(cur) {
		if p, ok := prev[n]; !ok {
			out = append(out, "file "+n+" added")
		} else if p != cur[n] {
			out = append(out, "file "+n+" changed")
		}
	}
	for _, n := range sortedKeys(prev) {
		if _, ok := cur[n]; !ok {
			out = append(out, "file "+n+" removed")
		}
	}
	if len(out) > 10 {
		out = append(out[:10], fmt.Sprintf("and %d more files", len(out)-10))
	}
	return out
}
