package sbom

import (
	"bytes"
	"fmt"
	"strings"
)

// paragraph is one stanza of a deb822 control file (dpkg status, DEP-5 copyright) or of
// Python's RFC 822 metadata: fields by lower-cased name, every value of a repeated field kept.
type paragraph map[string][]string

// get is a field's first value, "" when absent.
func (p paragraph) get(field string) string {
	if v := p[field]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// parseParagraphs splits deb822 text into paragraphs. A continuation line (leading space or
// tab) extends the field before it; a line of only " ." is an empty line inside a value.
// With headerOnly, the first blank line ends the text (Python metadata's body follows it).
func parseParagraphs(data []byte, headerOnly bool) ([]paragraph, error) {
	var out []paragraph
	var cur paragraph
	var last string
	var lines []string // the value of the field last, line by line: joined once, not per line
	flush := func() {
		if last != "" {
			vals := cur[last]
			vals[len(vals)-1] = strings.Join(lines, "\n")
		}
		last, lines = "", lines[:0]
	}
	for n, line := range bytes.Split(data, []byte("\n")) {
		s := strings.TrimSuffix(string(line), "\r")
		switch {
		case strings.TrimSpace(s) == "":
			if cur != nil {
				flush()
				out = append(out, cur)
				cur = nil
				if headerOnly {
					return out, nil
				}
			}
		case s[0] == ' ' || s[0] == '\t':
			if cur == nil || last == "" {
				return nil, fmt.Errorf("line %d: a continuation line with no field before it", n+1)
			}
			v := strings.TrimSpace(s)
			if v == "." {
				v = ""
			}
			lines = append(lines, v)
		case s[0] == '#' && !headerOnly:
			// deb822 comments
		default:
			k, v, ok := strings.Cut(s, ":")
			if !ok || k == "" || strings.ContainsAny(k, " \t") {
				return nil, fmt.Errorf("line %d: %q is not a \"Field: value\" line", n+1, truncate(s, 60))
			}
			if cur == nil {
				cur = paragraph{}
			}
			flush()
			last = strings.ToLower(k)
			cur[last] = append(cur[last], "")
			lines = append(lines, strings.TrimSpace(v))
		}
	}
	if cur != nil {
		flush()
		out = append(out, cur)
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
