package main

import (
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/tabwriter"
	"text/template"
)

// templateFuncs are docker's --format helpers.
var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"join":  strings.Join,
	"split": strings.Split,
	"lower": strings.ToLower,
	"upper": strings.ToUpper,
	"title": func(s string) string {
		if s == "" {
			return s
		}
		return strings.ToUpper(s[:1]) + s[1:]
	},
	"truncate": func(s string, n int) string {
		if r := []rune(s); len(r) > n {
			return string(r[:n])
		}
		return s
	},
	"pad": func(s string, before, after int) string {
		return strings.Repeat(" ", before) + s + strings.Repeat(" ", after)
	},
}

// rowFormat is a parsed docker --format: "table" (the verb's default columns), "table TEMPLATE"
// (a header row, tab-aligned columns), "json" (one object a line) or a Go template per row.
type rowFormat struct {
	tmpl  *template.Template // nil for json
	table bool
}

// parseFormat reads spec, where "" and "table" mean the verb's defaultTable ("table {{.ID}}\t…").
func parseFormat(spec, defaultTable string) (rowFormat, error) {
	switch spec {
	case "json":
		return rowFormat{}, nil
	case "", "table":
		spec = defaultTable
	}
	var f rowFormat
	if rest, ok := strings.CutPrefix(spec, "table"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
		f.table, spec = true, strings.TrimLeft(rest, " ")
	}
	// Docker's users type \t literally in the shell.
	spec = strings.ReplaceAll(spec, `\t`, "\t")
	t, err := template.New("format").Funcs(templateFuncs).Option("missingkey=zero").Parse(spec)
	if err != nil {
		return f, usageError{fmt.Errorf("invalid --format: %w", err)}
	}
	f.tmpl = t
	return f, nil
}

// write renders rows (structs of one type) per f; headers names the table columns of fields
// whose header is not the field name in capitals (docker's "CONTAINER ID" for ID).
func writeRows[T any](out io.Writer, f rowFormat, rows []T, headers map[string]string) error {
	if f.tmpl == nil {
		enc := json.NewEncoder(out)
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	w := out
	var tw *tabwriter.Writer
	if f.table {
		tw = tabwriter.NewWriter(out, 0, 4, 3, ' ', 0)
		w = tw
		if err := writeLine(w, f.tmpl, headerRow[T](headers)); err != nil {
			return err
		}
	}
	for _, r := range rows {
		if err := writeLine(w, f.tmpl, r); err != nil {
			return err
		}
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

func writeLine(w io.Writer, t *template.Template, v any) error {
	var b strings.Builder
	if err := t.Execute(&b, v); err != nil {
		return fmt.Errorf("--format: %w", err)
	}
	_, err := fmt.Fprintln(w, b.String())
	return err
}

// headerRow maps each field of T to its column header, for rendering the template's header line.
func headerRow[T any](headers map[string]string) map[string]string {
	h := map[string]string{}
	typ := reflect.TypeFor[T]()
	if typ.Kind() != reflect.Struct {
		return h // documents (inspect) have no fixed columns
	}
	for i := range typ.NumField() {
		name := typ.Field(i).Name
		if v, ok := headers[name]; ok {
			h[name] = v
		} else {
			h[name] = strings.ToUpper(name)
		}
	}
	return h
}
