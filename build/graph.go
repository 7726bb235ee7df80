package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
)

// OpKind says what a vertex does; it is part of every cache key.
type OpKind int

// The op kinds of a build graph.
const (
	SourceOp OpKind = iota // FROM: the base image's layers
	CopyOp                 // COPY/ADD: files from the context or another stage
	MkdirOp                // WORKDIR: create the directory when missing
	ExecOp                 // RUN: a command in a container
)

func (k OpKind) String() string {
	switch k {
	case SourceOp:
		return "source"
	case CopyOp:
		return "copy"
	case MkdirOp:
		return "mkdir"
	case ExecOp:
		return "exec"
	}
	return fmt.Sprintf("op(%d)", int(k))
}

// keyVersion is mixed into every cache key; bump it only when the meaning of a key changes,
// because keys are permanent once shipped (a test pins them).
const keyVersion = "kiln.v1"

// KeyInput is one named input of a cache key, kept so --explain can say what changed.
type KeyInput struct {
	Name  string // e.g. "parent", "cmd", "arg:VERSION", "file:src/main.go"
	Value string // a digest or a literal value
}

// Vertex is one filesystem-changing step of the graph: an op and where its inputs come from.
type Vertex struct {
	Key    string // "sha256:…" over keyVersion, the op's key and the inputs' keys
	Name   string // display name, e.g. "[2/4] COPY app /app"
	Instr  string // the instruction, for errors: "COPY", "RUN", …
	Stage  int
	Line   int
	Parent *Vertex   // the filesystem this step starts from (nil for a base image)
	Deps   []*Vertex // other vertices whose results this step reads (COPY --from, bind mounts)
	op     op
	key    opKey // the op's key inputs, kept for --explain
}

// Inputs are the op's own key inputs, for --explain and tests.
func (v *Vertex) Inputs() []KeyInput { return v.key.inputs }

// Graph is the planned build: the vertices of every stage reachable from the target.
type Graph struct {
	File     string    // the Buildfile's display name, for errors
	Vertices []*Vertex // in topological order: every vertex after its Parent and Deps
	Stages   []*PlannedStage
	Target   *PlannedStage
	Checks   []Check // the build-check warnings found while planning, in the order found
}

// computeKey asks the op for its key and fills v.Key from it and the keys of v's parent
// and deps.
func (v *Vertex) computeKey(ctx context.Context) {
	deps := make([]string, len(v.Deps))
	for i, d := range v.Deps {
		deps[i] = d.Key
	}
	v.key = v.op.cacheKey(ctx, deps)
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", keyVersion, v.key.kind)
	if v.Parent != nil && !v.key.parentFree {
		fmt.Fprintf(h, "parent\x00%s\x00", v.Parent.Key)
	}
	for _, d := range v.Deps {
		fmt.Fprintf(h, "dep\x00%s\x00", d.Key)
	}
	for _, in := range v.key.inputs {
		fmt.Fprintf(h, "%d:%s\x00%d:%s\x00", len(in.Name), in.Name, len(in.Value), in.Value)
	}
	v.Key = "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// Dump renders the graph as stable text for golden tests and `--debug`.
func (g *Graph) Dump() string {
	var b strings.Builder
	ids := map[*Vertex]int{}
	for i, v := range g.Vertices {
		ids[v] = i
		fmt.Fprintf(&b, "v%d %s stage=%d line=%d %s\n", i, v.key.kind, v.Stage, v.Line, v.Name)
		if v.Parent != nil {
			fmt.Fprintf(&b, "  parent v%d\n", ids[v.Parent])
		}
		for _, d := range v.Deps {
			fmt.Fprintf(&b, "  dep v%d\n", ids[d])
		}
		ins := append([]KeyInput(nil), v.key.inputs...)
		sort.SliceStable(ins, func(i, j int) bool { return ins[i].Name < ins[j].Name })
		for _, in := range ins {
			fmt.Fprintf(&b, "  %s = %q\n", in.Name, in.Value)
		}
		fmt.Fprintf(&b, "  key %s\n", v.Key)
	}
	if g.Target != nil {
		fmt.Fprintf(&b, "target stage=%d\n", g.Target.Index)
	}
	return b.String()
}
