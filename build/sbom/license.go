package sbom

import (
	"regexp"
	"slices"
	"strings"
)

// spdxIDs are the SPDX license identifiers packages commonly state, by lower-cased id, so a
// stated license is written in SPDX's spelling. An identifier not listed becomes a
// LicenseRef- (declared in the document), which keeps the document valid whatever packages say.
var spdxIDs = map[string]string{}

func init() {
	for _, id := range strings.Fields(`0BSD AFL-2.1 AFL-3.0 AGPL-3.0-only AGPL-3.0-or-later Apache-1.0 Apache-1.1
		Apache-2.0 APSL-2.0 Artistic-1.0 Artistic-1.0-Perl Artistic-2.0 Beerware BlueOak-1.0.0 BSD-1-Clause
		BSD-2-Clause BSD-2-Clause-Patent BSD-3-Clause BSD-3-Clause-Clear BSD-4-Clause BSD-Source-Code
		bzip2-1.0.6 BSL-1.0 CC-BY-3.0 CC-BY-4.0 CC-BY-SA-3.0 CC-BY-SA-4.0 CC-PDDC CC0-1.0 CDDL-1.0 CDDL-1.1
		CECILL-2.1 CPL-1.0 curl ECL-2.0 EPL-1.0 EPL-2.0 EUPL-1.1 EUPL-1.2 FSFAP FSFUL FSFULLR FTL
		GFDL-1.1-only GFDL-1.1-or-later GFDL-1.2-only GFDL-1.2-or-later GFDL-1.3-only GFDL-1.3-or-later
		GPL-1.0-only GPL-1.0-or-later GPL-2.0-only GPL-2.0-or-later GPL-3.0-only GPL-3.0-or-later HPND ICU
		IJG Info-ZIP IPA ISC LGPL-2.0-only LGPL-2.0-or-later LGPL-2.1-only LGPL-2.1-or-later LGPL-3.0-only
		LGPL-3.0-or-later Libpng libpng-2.0 LPPL-1.3c MirOS MIT MIT-0 MIT-CMU MPL-1.0 MPL-1.1 MPL-2.0
		MPL-2.0-no-copyleft-exception MS-PL NCSA Net-SNMP NTP OFL-1.1 OLDAP-2.8 OpenSSL OSL-3.0 PHP-3.01
		PostgreSQL PSF-2.0 Python-2.0 Python-2.0.1 Ruby Sleepycat SSLeay-standalone TCL Unicode-3.0
		Unicode-DFS-2015 Unicode-DFS-2016 Unlicense UPL-1.0 Vim W3C WTFPL X11 Xnet Zlib zlib-acknowledgement
		ZPL-2.0 ZPL-2.1 GPL-2.0 GPL-3.0 LGPL-2.1 LGPL-3.0 AGPL-3.0 GPL-1.0 LGPL-2.0`) {
		spdxIDs[strings.ToLower(id)] = id
	}
}

// spdxExceptions are the license exceptions of SPDX that follow WITH.
var spdxExceptions = map[string]string{}

func init() {
	for _, id := range strings.Fields(`Autoconf-exception-2.0 Autoconf-exception-3.0 Bison-exception-2.2
		Classpath-exception-2.0 GCC-exception-2.0 GCC-exception-3.1 LLVM-exception OpenSSL-exception
		Font-exception-2.0 Linux-syscall-note Libtool-exception Qt-LGPL-exception-1.1`) {
		spdxExceptions[strings.ToLower(id)] = id
	}
}

// licenseRef makes an unknown license name an SPDX LicenseRef-: letters, digits, '.' and '-'.
func licenseRef(name string) string {
	return "LicenseRef-" + idSafe(name)
}

// idSafe keeps what SPDX allows in an identifier and turns the rest into '-'.
func idSafe(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.'
		switch {
		case ok:
			b.WriteRune(r)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
	}
	out := strings.TrimSuffix(b.String(), "-")
	if out == "" {
		return "unknown"
	}
	return out
}

// spdxExpr reads a license expression from a source that claims SPDX syntax (npm, apk,
// Python's License-Expression) and writes it in SPDX's spelling; what does not parse as an
// expression becomes one LicenseRef-.
func spdxExpr(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	p := &exprParser{toks: tokenize(s)}
	out, ok := p.expr()
	if !ok || p.i != len(p.toks) {
		return licenseRef(s)
	}
	return out
}

func tokenize(s string) []string {
	s = strings.NewReplacer("(", " ( ", ")", " ) ").Replace(s)
	return strings.Fields(s)
}

// exprParser is a recursive-descent parser of SPDX expressions (AND binds tighter than OR,
// WITH tightest), lenient about the operators' case.
type exprParser struct {
	toks []string
	i    int
}

func (p *exprParser) peek(op string) bool {
	return p.i < len(p.toks) && strings.EqualFold(p.toks[p.i], op)
}

func (p *exprParser) expr() (string, bool) {
	return p.chain("OR", p.term)
}

func (p *exprParser) term() (string, bool) {
	return p.chain("AND", p.factor)
}

func (p *exprParser) chain(op string, next func() (string, bool)) (string, bool) {
	first, ok := next()
	if !ok {
		return "", false
	}
	parts := []string{first}
	for p.peek(op) {
		p.i++
		n, ok := next()
		if !ok {
			return "", false
		}
		parts = append(parts, n)
	}
	return strings.Join(parts, " "+op+" "), true
}

func (p *exprParser) factor() (string, bool) {
	if p.i >= len(p.toks) {
		return "", false
	}
	t := p.toks[p.i]
	p.i++
	if t == "(" {
		e, ok := p.expr()
		if !ok || !p.peek(")") {
			return "", false
		}
		p.i++
		return "(" + e + ")", true
	}
	if t == ")" || isOperator(t) {
		return "", false
	}
	id := licenseID(t)
	if p.peek("WITH") {
		p.i++
		if p.i >= len(p.toks) {
			return "", false
		}
		exc, ok := spdxExceptions[strings.ToLower(p.toks[p.i])]
		p.i++
		if !ok || strings.HasPrefix(id, "LicenseRef-") {
			return licenseRef(t + "-with-" + p.toks[p.i-1]), true
		}
		return id + " WITH " + exc, true
	}
	return id, true
}

func isOperator(t string) bool {
	return strings.EqualFold(t, "AND") || strings.EqualFold(t, "OR") || strings.EqualFold(t, "WITH")
}

// licenseID spells one identifier as SPDX does, "id+" (or later) included.
func licenseID(t string) string {
	if strings.HasPrefix(t, "LicenseRef-") {
		return "LicenseRef-" + idSafe(strings.TrimPrefix(t, "LicenseRef-"))
	}
	base, plus := strings.CutSuffix(t, "+")
	if id, ok := spdxIDs[strings.ToLower(base)]; ok {
		if plus {
			return id + "+"
		}
		return id
	}
	return licenseRef(t)
}

// debGNU matches Debian's short names of the GNU licenses: GPL-2, GPL-2+, LGPL-2.1+, GFDL-1.3.
var debGNU = regexp.MustCompile(`(?i)^(A?GPL|LGPL|GFDL)-?(\d)(\.\d)?(\+)?$`)

// debNames are DEP-5 short names whose SPDX spelling differs.
var debNames = map[string]string{
	"expat": "MIT", "artistic": "Artistic-1.0", "perl": "(Artistic-1.0-Perl OR GPL-1.0-or-later)",
	"psf-2": "PSF-2.0", "python": "Python-2.0", "zlib": "Zlib", "bsl": "BSL-1.0", "mpl-2": "MPL-2.0",
}

// debLicenseExpr reads a DEP-5 License field's short name ("GPL-2+ or Artistic",
// "BSD-3-clause, and Expat", "GPL-2+ with OpenSSL exception") as an SPDX expression.
func debLicenseExpr(s string) string {
	if s == "" {
		return ""
	}
	// DEP-5: a comma before "and"/"or" makes that operator bind loosest.
	var groups []string
	var ops []string
	for i, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if i > 0 {
			op, rest, _ := strings.Cut(part, " ")
			if !strings.EqualFold(op, "and") && !strings.EqualFold(op, "or") {
				return licenseRef(s)
			}
			ops = append(ops, strings.ToUpper(op))
			part = strings.TrimSpace(rest)
		}
		g, ok := debGroup(part)
		if !ok {
			return licenseRef(s)
		}
		groups = append(groups, g)
	}
	var b strings.Builder
	for i, g := range groups {
		if i > 0 {
			b.WriteString(" " + ops[i-1] + " ")
		}
		if len(groups) > 1 {
			g = paren(g)
		}
		b.WriteString(g)
	}
	// Whatever slipped through the translation must still be an expression.
	if e := b.String(); spdxExpr(e) == e {
		return e
	}
	return licenseRef(s)
}

// debGroup translates "A or B and C" with Debian names; "X with Y exception" stays one
// LicenseRef, as Debian's exception names are not SPDX's.
func debGroup(s string) (string, bool) {
	toks := strings.Fields(s)
	var out []string
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if strings.EqualFold(t, "and") || strings.EqualFold(t, "or") {
			if len(out) == 0 || i == len(toks)-1 || isOperator(out[len(out)-1]) {
				return "", false
			}
			out = append(out, strings.ToUpper(t))
			continue
		}
		if len(out) > 0 && !isOperator(out[len(out)-1]) {
			if !strings.EqualFold(t, "with") {
				return "", false
			}
			// "with NAME exception": everything to the next operator.
			j := i + 1
			for j < len(toks) && !strings.EqualFold(toks[j], "and") && !strings.EqualFold(toks[j], "or") {
				j++
			}
			out[len(out)-1] = licenseRef(strings.Join(toks[i-1:j], " "))
			i = j - 1
			continue
		}
		out = append(out, debID(t))
	}
	if len(out) == 0 {
		return "", false
	}
	return strings.Join(out, " "), true
}

// debID translates one DEP-5 short name.
func debID(t string) string {
	if m := debGNU.FindStringSubmatch(t); m != nil {
		minor := m[3]
		if minor == "" {
			minor = ".0"
		}
		suffix := "-only"
		if m[4] != "" {
			suffix = "-or-later"
		}
		return strings.ToUpper(m[1]) + "-" + m[2] + minor + suffix
	}
	if id, ok := debNames[strings.ToLower(t)]; ok {
		return id
	}
	if id, ok := spdxIDs[strings.ToLower(t)]; ok {
		return id
	}
	return licenseRef(t)
}

// paren wraps a compound expression, so joining it with another operator keeps its meaning.
func paren(e string) string {
	if strings.Contains(e, " ") && !(strings.HasPrefix(e, "(") && strings.HasSuffix(e, ")") && balancedInside(e)) {
		return "(" + e + ")"
	}
	return e
}

// balancedInside reports whether e's outer parentheses enclose all of it.
func balancedInside(e string) bool {
	depth := 0
	for i, r := range e {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 && i != len(e)-1 {
				return false
			}
		}
	}
	return true
}

// joinAnd is the conjunction of several licenses, each of which applies to part of a package:
// nested conjunctions are flattened, duplicates dropped, and disjunctions parenthesized.
func joinAnd(exprs []string) string {
	var parts []string
	for _, e := range exprs {
		for _, p := range splitTop(unwrap(e), " AND ") {
			if p = unwrap(p); len(splitTop(p, " OR ")) > 1 {
				p = "(" + p + ")"
			}
			if !slices.Contains(parts, p) {
				parts = append(parts, p)
			}
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, " AND ")
}

// splitTop splits e at op where op is outside parentheses.
func splitTop(e, op string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(e); i++ {
		switch e[i] {
		case '(':
			depth++
		case ')':
			depth--
		}
		if depth == 0 && strings.HasPrefix(e[i:], op) {
			out = append(out, e[start:i])
			start = i + len(op)
			i += len(op) - 1
		}
	}
	return append(out, e[start:])
}

// unwrap drops parentheses that enclose all of e.
func unwrap(e string) string {
	for strings.HasPrefix(e, "(") && strings.HasSuffix(e, ")") && balancedInside(e) {
		e = e[1 : len(e)-1]
	}
	return e
}

// licenseRefs lists the LicenseRef- identifiers an expression uses.
func licenseRefs(expr string) []string {
	var out []string
	for _, t := range tokenize(expr) {
		if strings.HasPrefix(t, "LicenseRef-") {
			out = append(out, t)
		}
	}
	return out
}

// supplier turns "Name <email>" into SPDX's "Person: Name (email)".
func supplier(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	name, email, ok := strings.Cut(s, "<")
	if !ok {
		return "Person: " + s
	}
	name = strings.TrimSpace(name)
	email = strings.TrimSuffix(strings.TrimSpace(email), ">")
	if name == "" {
		name = email
	}
	return "Person: " + name + " (" + email + ")"
}
