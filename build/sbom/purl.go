package sbom

import (
	"slices"
	"strings"
)

// purl builds a package URL: pkg:TYPE/NAMESPACE/NAME@VERSION?QUALIFIERS, each part
// percent-encoded as the PURL spec says; empty qualifiers are left out, the rest sorted.
// The namespace may hold several '/'-separated segments (Go module paths).
func purl(typ, namespace, name, version string, qualifiers ...[2]string) string {
	var b strings.Builder
	b.WriteString("pkg:" + typ + "/")
	for seg := range strings.SplitSeq(namespace, "/") {
		if seg != "" {
			b.WriteString(escape(seg) + "/")
		}
	}
	b.WriteString(escape(name))
	if version != "" {
		b.WriteString("@" + escape(version))
	}
	q := slices.DeleteFunc(slices.Clone(qualifiers), func(kv [2]string) bool { return kv[1] == "" })
	slices.SortFunc(q, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	for i, kv := range q {
		if i == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		b.WriteString(kv[0] + "=" + escape(kv[1]))
	}
	return b.String()
}

// escape percent-encodes all but unreserved characters and ':', which PURLs keep as is.
func escape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~:", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}
