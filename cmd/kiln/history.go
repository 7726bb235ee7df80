package main

import (
	"fmt"
	"strings"
	"time"

	units "github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/cache"
)

// historyRow is one line of `kiln history`, with docker's field names for --format.
type historyRow struct {
	ID           string `json:"ID"`
	CreatedSince string `json:"CreatedSince"`
	CreatedAt    string `json:"CreatedAt"`
	CreatedBy    string `json:"CreatedBy"`
	Size         string `json:"Size"`
	Comment      string `json:"Comment"`
}

const historyTable = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"

var historyHeaders = map[string]string{"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
	"CreatedBy": "CREATED BY"}

func newHistoryCmd(g *globalOptions) *cobra.Command {
	var noTrunc, quiet, human bool
	var format string
	c := &cobra.Command{
		Use:   "history [--no-trunc] [-q] [--format FORMAT] IMAGE",
		Short: "Show the history of an image",
		Long: "Show an image's build steps, newest first: IMAGE CREATED CREATED BY SIZE COMMENT. Only the\n" +
			"newest step has an image id (<missing> for the others, as docker). SIZE is the layer blob's size.\n" +
			"--format takes table, json or a Go template ({{.ID}} {{.CreatedSince}} {{.CreatedAt}}\n" +
			"{{.CreatedBy}} {{.Size}} {{.Comment}}).",
		Args: argsRange(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := parseFormat(format, historyTable)
			if err != nil {
				return err
			}
			s, err := g.openStore()
			if err != nil {
				return err
			}
			defer s.Close()
			desc, _, err := s.Lookup(args[0])
			if err != nil {
				return err
			}
			img, err := s.Image(desc.Digest)
			if err != nil {
				return fmt.Errorf("history %s: %w", args[0], err)
			}
			id, err := img.ConfigName()
			if err != nil {
				return fmt.Errorf("history %s: %w", args[0], err)
			}
			hist, err := cache.ImageHistory(img)
			if err != nil {
				return fmt.Errorf("history %s: %w", args[0], err)
			}
			rows := historyRows(hist, id.String(), noTrunc, human, time.Now())
			if quiet {
				for _, r := range rows {
					fmt.Fprintln(cmd.OutOrStdout(), r.ID)
				}
				return nil
			}
			return writeRows(cmd.OutOrStdout(), f, rows, historyHeaders)
		},
	}
	c.Flags().BoolVar(&noTrunc, "no-trunc", false, "do not truncate the output")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "only show image IDs")
	c.Flags().BoolVarP(&human, "human", "H", true, "print sizes and dates in human readable format")
	c.Flags().StringVar(&format, "format", "", "table, json or a Go template")
	return c
}

// historyRows renders entries as docker does: the id on the newest step only, CREATED BY
// truncated to 45 characters.
func historyRows(hist []cache.HistoryEntry, id string, noTrunc, human bool, now time.Time) []historyRow {
	rows := make([]historyRow, 0, len(hist))
	for i, e := range hist {
		r := historyRow{ID: "<missing>", CreatedBy: e.CreatedBy, Comment: e.Comment,
			CreatedAt: e.Created.Format(time.RFC3339), Size: fmt.Sprint(e.Size)}
		if i == 0 {
			r.ID = id
			if !noTrunc {
				r.ID = shortID(id)
			}
		}
		if human {
			r.CreatedSince, r.Size = units.HumanDuration(now.Sub(e.Created))+" ago", humanSize(e.Size)
		} else {
			r.CreatedSince = r.CreatedAt
		}
		if e.Created.IsZero() {
			r.CreatedSince, r.CreatedAt = "N/A", "N/A"
		}
		if !noTrunc {
			r.CreatedBy = strings.ReplaceAll(r.CreatedBy, "\n", " ")
			if rs := []rune(r.CreatedBy); len(rs) > 45 {
				r.CreatedBy = string(rs[:44]) + "…"
			}
		}
		rows = append(rows, r)
	}
	return rows
}
