package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/cache"
)

// confirm asks docker's question on stderr and reads the answer from stdin; anything but y is no.
func confirm(cmd *cobra.Command, warning string) bool {
	fmt.Fprintf(cmd.ErrOrStderr(), "WARNING! %s\nAre you sure you want to continue? [y/N] ", warning)
	line, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
	answer := strings.ToLower(strings.TrimSpace(line))
	return answer == "y" || answer == "yes"
}

// runGC opens the store exclusively and collects per opts.
func runGC(cmd *cobra.Command, g *globalOptions, opts cache.GCOptions) (cache.GCStats, error) {
	s, err := cache.OpenExclusive(g.storeRoot())
	if err != nil {
		return cache.GCStats{}, err
	}
	defer s.Close()
	return s.GC(cmd.Context(), opts)
}

// printDeleted is one of docker's "Deleted Containers:" (Networks, Volumes) sections of a prune:
// nothing when nothing went, else the heading, one name a line and, with blank, an empty line.
func printDeleted(out io.Writer, heading string, names []string, blank bool) {
	if len(names) == 0 {
		return
	}
	fmt.Fprintln(out, heading)
	for _, n := range names {
		fmt.Fprintln(out, n)
	}
	if blank {
		fmt.Fprintln(out)
	}
}

// printPruned reports in docker's shape what a prune removed.
func printPruned(out io.Writer, containers []string, st cache.GCStats) {
	printDeleted(out, "Deleted Containers:", containers, true)
	if len(st.Images) > 0 {
		fmt.Fprintln(out, "Deleted Images:")
		for _, im := range st.Images {
			if !im.Name.IsZero() {
				fmt.Fprintf(out, "untagged: %s\n", im.Name.Short())
			}
			fmt.Fprintf(out, "deleted: %s\n", im.ID)
		}
		fmt.Fprintln(out)
	}
	if st.CacheRecords > 0 {
		fmt.Fprintf(out, "Deleted build cache objects: %d\n\n", st.CacheRecords)
	}
	fmt.Fprintf(out, "Total reclaimed space: %s\n", humanSize(st.Bytes))
}

func newImagePruneCmd(g *globalOptions) *cobra.Command {
	var all, force bool
	c := &cobra.Command{
		Use:   "prune [-a] [-f]",
		Short: "Remove unused images",
		Long: "Remove dangling (unnamed) images, or with -a every image no container uses, and the blobs\n" +
			"and snapshots only they held. The build cache stays (see 'kiln builder prune').",
		Args: argsRange(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, warning := cache.GCOptions{Images: cache.DanglingImages}, "This will remove all dangling images."
			if all {
				opts.Images, warning = cache.UnusedImages, "This will remove all images without at least one container associated to them."
			}
			if !force && !confirm(cmd, warning) {
				return nil
			}
			st, err := runGC(cmd, g, opts)
			if err != nil {
				return fmt.Errorf("image prune: %w", err)
			}
			printPruned(cmd.OutOrStdout(), nil, st)
			return nil
		},
	}
	c.Flags().BoolVarP(&all, "all", "a", false, "remove all unused images, not just dangling ones")
	c.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	return c
}

// parseTime reads docker's time arguments: a duration back from now (10m), RFC 3339, or Unix seconds.
func parseTime(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		return time.Unix(0, int64(secs*1e9)), nil
	}
	return time.Time{}, fmt.Errorf("invalid time %q: use a duration (10m), RFC 3339 (2006-01-02T15:04:05Z) or Unix seconds", v)
}

// untilFilter reads --filter until=TIME as an age; other filters are usage errors.
func untilFilter(flags []string, now time.Time) (time.Duration, error) {
	f, err := parseFilters(flags, "until")
	if err != nil {
		return 0, err
	}
	var age time.Duration
	for _, v := range f["until"] {
		t, err := parseTime(v, now)
		if err != nil || !t.Before(now) {
			return 0, usageError{fmt.Errorf("invalid filter until=%s: use a past time such as until=24h", v)}
		}
		age = now.Sub(t)
	}
	return age, nil
}

func newBuilderCmd(g *globalOptions) *cobra.Command {
	c := &cobra.Command{
		Use:   "builder",
		Short: "Manage the build cache",
		Args:  argsRange(0, 0),
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var all, force bool
	var keep string
	var filters []string
	prune := &cobra.Command{
		Use:   "prune [-a] [-f] [--keep-storage SIZE] [--filter until=DURATION]",
		Short: "Remove build cache",
		Long: "Remove the build cache: every record, or with --filter until=24h those unused for longer than\n" +
			"that, or with --keep-storage the least recently used until the cache fits in SIZE. Images keep\n" +
			"their layers; only what the removed records alone held is deleted.",
		Args: argsRange(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var opts cache.GCOptions
			var err error
			if opts.UnusedFor, err = untilFilter(filters, time.Now()); err != nil {
				return err
			}
			if opts.KeepStorage, err = keepStorage(keep); err != nil {
				return err
			}
			// kiln's cache has no records in use by a running build to spare, so -a adds nothing
			// beyond dropping every record when no limit is given.
			opts.All = opts.UnusedFor == 0 && opts.KeepStorage == 0
			if !force && !confirm(cmd, "This will remove all dangling build cache.") {
				return nil
			}
			st, err := runGC(cmd, g, opts)
			if err != nil {
				return fmt.Errorf("builder prune: %w", err)
			}
			printPruned(cmd.OutOrStdout(), nil, st)
			return nil
		},
	}
	prune.Flags().BoolVarP(&all, "all", "a", false, "remove all build cache (kiln's default)")
	prune.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	prune.Flags().StringVar(&keep, "keep-storage", "", "keep at most this much build cache (e.g. 5g)")
	prune.Flags().StringArrayVar(&filters, "filter", nil, "only records unused for longer than this (until=24h)")
	c.AddCommand(prune)
	return c
}

func newSystemPruneCmd(g *globalOptions) *cobra.Command {
	var all, force, volumes bool
	c := &cobra.Command{
		Use:   "prune [-a] [-f] [--volumes]",
		Short: "Remove stopped containers, dangling images and the build cache",
		Long: "Remove every stopped container, the networks no container is on, dangling images (with -a\n" +
			"every image no container uses), the build cache, and the blobs and snapshots only they held.\n" +
			"--volumes also removes the\n" +
			"anonymous volumes no container uses (docker ≥ 23; named ones go with kiln volume prune -a).",
		Args: argsRange(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := cache.GCOptions{All: true, Images: cache.DanglingImages}
			items := "  - all stopped containers\n  - all networks not used by at least one container\n  - all dangling images\n  - all build cache"
			if all {
				opts.Images = cache.UnusedImages
				items = "  - all stopped containers\n  - all networks not used by at least one container\n" +
					"  - all images without at least one container associated to them\n  - all build cache"
			}
			if volumes {
				items += "\n  - all anonymous volumes not used by at least one container"
			}
			if !force && !confirm(cmd, "This will remove:\n"+items+"\n") {
				return nil
			}
			cs, err := g.openContainers()
			if err != nil {
				return err
			}
			rt, err := g.containerRuntime(cmd)
			if err != nil {
				return err
			}
			ids, st, err := cs.PruneSystem(cmd.Context(), rt, opts)
			nets, nerr := cs.PruneNetworks(cmd.Context(), rt) // after the containers, which held them
			printDeleted(cmd.OutOrStdout(), "Deleted Networks:", nets, false)
			err = errors.Join(err, nerr)
			if volumes { // after the containers, whose removal frees their volumes
				names, size, verr := cs.PruneVolumes(cmd.Context(), false)
				printDeleted(cmd.OutOrStdout(), "Deleted Volumes:", names, true)
				st.Bytes, err = st.Bytes+size, errors.Join(err, verr)
			}
			printPruned(cmd.OutOrStdout(), ids, st)
			return err
		},
	}
	c.Flags().BoolVarP(&all, "all", "a", false, "remove all unused images, not just dangling ones")
	c.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	c.Flags().BoolVar(&volumes, "volumes", false, "also remove anonymous volumes no container uses")
	return c
}
