package main

import (
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"text/tabwriter"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/cache"
)

type imagesOptions struct {
	quiet   bool
	format  string
	digest  bool
	filters []string
}

// imageRow is one line of `kiln images`, also its JSON form.
type imageRow struct {
	Repository string    `json:"Repository"`
	Tag        string    `json:"Tag"`
	ID         string    `json:"ID"`
	Digest     string    `json:"Digest"`
	Created    time.Time `json:"Created"`
	Size       int64     `json:"Size"`
	labels     map[string]string
	dangling   bool // listed without a name: <none> <none>
}

// imageView is an image row as --format templates see it: docker's field names and text.
type imageView struct {
	ID, Repository, Tag, Digest, CreatedSince, CreatedAt, Size string
}

var imageHeaders = map[string]string{"ID": "IMAGE ID", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT"}

func newImagesCmd(g *globalOptions) *cobra.Command {
	o := &imagesOptions{}
	c := &cobra.Command{
		Use:   "images [REPOSITORY[:TAG]]",
		Short: "List images in the store",
		Args:  argsRange(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.openStore()
			if err != nil {
				return err
			}
			defer s.Close()
			rows, err := listImages(s, args)
			if err != nil {
				return err
			}
			return o.print(cmd, rows)
		},
	}
	c.Flags().BoolVarP(&o.quiet, "quiet", "q", false, "print image IDs only")
	c.Flags().StringVar(&o.format, "format", "table", "table, json, a Go template ({{.ID}} {{.Repository}} {{.Tag}} {{.Digest}}\n"+
		"{{.CreatedSince}} {{.CreatedAt}} {{.Size}}) or table TEMPLATE")
	c.Flags().StringArrayVarP(&o.filters, "filter", "f", nil, "filter: reference=PATTERN, label=KEY[=VALUE], dangling=true|false, before=IMAGE, since=IMAGE")
	c.Flags().BoolVar(&o.digest, "digests", false, "show manifest digests")
	return c
}

func listImages(s *cache.Store, filter []string) ([]imageRow, error) {
	tagged, err := s.List()
	if err != nil {
		return nil, err
	}
	var rows []imageRow
	for _, t := range tagged {
		short := t.Name.Short()
		if len(filter) == 1 && !matchesFilter(t.Name, filter[0]) {
			continue
		}
		row, err := storedRow(s, t.Descriptor, short)
		if err != nil {
			return nil, err
		}
		row.Repository, row.Tag = splitShort(short)
		rows = append(rows, row)
	}
	if len(filter) == 1 {
		return rows, nil // a REPOSITORY names no dangling image
	}
	dangling, err := s.Dangling()
	if err != nil {
		return nil, err
	}
	for _, d := range dangling {
		row, err := storedRow(s, d, d.Digest.String())
		if err != nil {
			return nil, err
		}
		row.Repository, row.Tag, row.dangling = "<none>", "<none>", true
		rows = append(rows, row)
	}
	return rows, nil
}

// storedRow describes the stored image desc, which errors call what.
func storedRow(s *cache.Store, desc v1.Descriptor, what string) (imageRow, error) {
	img, err := s.Image(desc.Digest)
	if err != nil {
		return imageRow{}, fmt.Errorf("image %s: %w", what, err)
	}
	row, err := describe(img)
	if err != nil {
		return imageRow{}, fmt.Errorf("image %s: %w", what, err)
	}
	row.Digest = desc.Digest.String()
	return row, nil
}

// matchesFilter accepts "repo" (any tag) or "repo:tag", in short or normalized form.
func matchesFilter(n cache.Name, f string) bool {
	if fn, err := cache.ParseName(f); err == nil && fn.String() == n.String() {
		return true
	}
	repo, _ := splitShort(n.Short())
	return f == repo || f == n.Repository()
}

// splitShort splits "repo:tag" at the tag's colon (not a registry port's).
func splitShort(s string) (string, string) {
	if i := strings.LastIndex(s, ":"); i > strings.LastIndex(s, "/") {
		return s[:i], s[i+1:]
	}
	return s, "<none>"
}

// describe reads an image's ID, creation time and size (config plus compressed layers).
func describe(img v1.Image) (imageRow, error) {
	id, err := img.ConfigName()
	if err != nil {
		return imageRow{}, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return imageRow{}, err
	}
	m, err := img.Manifest()
	if err != nil {
		return imageRow{}, err
	}
	size := m.Config.Size
	for _, l := range m.Layers {
		size += l.Size
	}
	return imageRow{ID: id.String(), Created: cf.Created.Time, Size: size, labels: cf.Config.Labels}, nil
}

// filterImages keeps the rows the --filter flags select.
func filterImages(flags []string, rows []imageRow) ([]imageRow, error) {
	f, err := parseFilters(flags, "reference", "label", "dangling", "before", "since")
	if err != nil {
		return nil, err
	}
	for _, v := range f["dangling"] {
		if v != "true" && v != "false" {
			return nil, usageError{fmt.Errorf("invalid filter dangling=%s: use true or false", v)}
		}
	}
	created := func(ref string) (time.Time, bool) {
		for _, r := range rows {
			if r.Repository+":"+r.Tag == ref || r.Repository == ref && r.Tag == "latest" || strings.HasPrefix(strings.TrimPrefix(r.ID, "sha256:"), ref) {
				return r.Created, true
			}
		}
		return time.Time{}, false
	}
	var out []imageRow
	for _, r := range rows {
		if !f.match("reference", func(v string) bool {
			a, _ := path.Match(v, r.Repository+":"+r.Tag)
			b, _ := path.Match(v, r.Repository)
			return a || b
		}) || !f.match("label", matchLabel(r.labels)) ||
			!f.match("dangling", func(v string) bool { return (v == "true") == r.dangling }) ||
			!f.match("before", func(v string) bool { t, ok := created(v); return ok && r.Created.Before(t) }) ||
			!f.match("since", func(v string) bool { t, ok := created(v); return ok && r.Created.After(t) }) {
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

func (o *imagesOptions) print(cmd *cobra.Command, rows []imageRow) error {
	out := cmd.OutOrStdout()
	rows, err := filterImages(o.filters, rows)
	if err != nil {
		return err
	}
	switch {
	case o.quiet:
		seen := map[string]bool{}
		for _, r := range rows {
			if id := shortID(r.ID); !seen[id] {
				seen[id] = true
				fmt.Fprintln(out, id)
			}
		}
		return nil
	case o.format == "json":
		enc := json.NewEncoder(out)
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	case o.format != "table":
		f, err := parseFormat(o.format, "")
		if err != nil {
			return err
		}
		views := make([]imageView, 0, len(rows))
		for _, r := range rows {
			views = append(views, imageView{ID: shortID(r.ID), Repository: r.Repository, Tag: r.Tag, Digest: r.Digest,
				CreatedSince: humanAgo(r.Created), CreatedAt: r.Created.Local().Format("2006-01-02 15:04:05 -0700 MST"), Size: humanSize(r.Size)})
		}
		return writeRows(out, f, views, imageHeaders)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 3, ' ', 0)
	header := "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE"
	if o.digest {
		header = "REPOSITORY\tTAG\tDIGEST\tIMAGE ID\tCREATED\tSIZE"
	}
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		cols := []string{r.Repository, r.Tag, shortID(r.ID), humanAgo(r.Created), humanSize(r.Size)}
		if o.digest {
			cols = append(cols[:2], append([]string{r.Digest}, cols[2:]...)...)
		}
		fmt.Fprintln(tw, strings.Join(cols, "\t"))
	}
	return tw.Flush()
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// humanSize prints sizes like docker: 1.5MB, 230kB (decimal units).
func humanSize(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB"}
	f, i := float64(n), 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%dB", n)
	}
	return fmt.Sprintf("%.3g%s", f, units[i])
}

// humanAgo prints "3 minutes ago" like docker.
func humanAgo(t time.Time) string {
	if t.IsZero() || t.Unix() <= 0 {
		return "N/A"
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return "Less than a minute ago"
	case d < time.Hour:
		return plural(int(d.Minutes()), "minute") + " ago"
	case d < 48*time.Hour:
		return plural(int(d.Hours()), "hour") + " ago"
	case d < 14*24*time.Hour:
		return plural(int(d.Hours()/24), "day") + " ago"
	case d < 60*24*time.Hour:
		return plural(int(d.Hours()/24/7), "week") + " ago"
	case d < 2*365*24*time.Hour:
		return plural(int(d.Hours()/24/30), "month") + " ago"
	}
	return plural(int(d.Hours()/24/365), "year") + " ago"
}

func plural(n int, unit string) string {
	if n == 1 {
		if unit == "hour" {
			return "About an hour"
		}
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
