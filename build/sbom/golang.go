package sbom

import (
	"path"
	"runtime/debug"
	"strings"
)

// goPackages lists what a Go binary's build info says went into it: its main module, every
// module it was built with (a replacement in place of what it replaces, since that is the
// code compiled in; one replaced by a directory has no version), and the standard library of its Go version.
func goPackages(bi *debug.BuildInfo) []Package {
	if bi == nil {
		return nil
	}
	mainPath, mainVersion := bi.Main.Path, bi.Main.Version
	if mainPath == "" {
		mainPath = bi.Path // built from files, not a module: "command-line-arguments"
	}
	out := []Package{goModule(mainPath, mainVersion)}
	out[0].Main = true
	for _, d := range bi.Deps {
		switch {
		case d.Replace != nil && d.Replace.Version != "" && d.Replace.Version != "(devel)":
			d = d.Replace
		case d.Replace != nil:
			// Replaced by a directory: the module path still names it, but no version does.
			d = &debug.Module{Path: d.Path}
		}
		out = append(out, goModule(d.Path, d.Version))
	}
	if v, _, _ := strings.Cut(bi.GoVersion, " "); strings.HasPrefix(v, "go") {
		out = append(out, Package{Type: "golang", Name: "stdlib", Version: v, PURL: purl("golang", "", "stdlib", strings.TrimPrefix(v, "go"))})
	}
	return out
}

func goModule(mod, version string) Package {
	if version == "(devel)" {
		version = "" // a local build: no version a PURL can name
	}
	ns, name := path.Split(mod)
	return Package{Type: "golang", Name: mod, Version: version, PURL: purl("golang", strings.TrimSuffix(ns, "/"), name, version)}
}
