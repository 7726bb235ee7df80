package main

import (
	"fmt"
	"slices"
	"strings"
)

// filters is a parsed docker --filter list: values of one key are alternatives (any may
// match), different keys must all match.
type filters map[string][]string

// parseFilters reads KEY=VALUE flags, refusing keys the verb does not know.
func parseFilters(flags []string, known ...string) (filters, error) {
	f := filters{}
	for _, kv := range flags {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageError{fmt.Errorf("bad format of filter %q (expected name=value)", kv)}
		}
		if !slices.Contains(known, k) {
			return nil, usageError{fmt.Errorf("invalid filter %q: use %s", k, strings.Join(known, ", "))}
		}
		f[k] = append(f[k], v)
	}
	return f, nil
}

// match reports whether, for key, any given value satisfies ok; an absent key matches.
func (f filters) match(key string, ok func(v string) bool) bool {
	vs, set := f[key]
	return !set || slices.ContainsFunc(vs, ok)
}

// matchLabel is docker's label=KEY or label=KEY=VALUE against labels.
func matchLabel(labels map[string]string) func(string) bool {
	return func(v string) bool {
		k, want, hasValue := strings.Cut(v, "=")
		got, ok := labels[k]
		return ok && (!hasValue || got == want)
	}
}
