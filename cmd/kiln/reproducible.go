package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/build"
)

// checkReproducible returns a build function that builds twice with every step run
// (--no-cache) and a fixed SOURCE_DATE_EPOCH, failing when the two images differ; the
// tags go on the second image only once both agree.
func checkReproducible(cmd *cobra.Command, contextDir string) func(context.Context, build.Options) (*build.Image, error) {
	return func(ctx context.Context, opts build.Options) (*build.Image, error) {
		if opts.Epoch == nil {
			epoch, err := gitCommitTime(ctx, contextDir)
			if err != nil {
				return nil, fmt.Errorf("--check-reproducible: set SOURCE_DATE_EPOCH (%w)", err)
			}
			opts.Epoch = &epoch
		}
		tags := opts.Tags
		opts.Tags, opts.NoCache = nil, true
		first, err := build.Build(ctx, opts)
		if err != nil {
			return nil, err
		}
		second, err := build.Build(ctx, opts)
		if err != nil {
			return nil, err
		}
		if first.Manifest.Digest != second.Manifest.Digest {
			diffs, err := build.DiffImages(ctx, opts.Store, first, second)
			if err != nil {
				return nil, err
			}
			if len(diffs) > 20 {
				diffs = append(diffs[:20], fmt.Sprintf("… and %d more", len(diffs)-20))
			}
			return nil, fmt.Errorf("the build is not reproducible: %s and %s differ:\n  %s",
				first.Manifest.Digest, second.Manifest.Digest, strings.Join(diffs, "\n  "))
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "reproducible: both builds gave %s\n", second.Manifest.Digest)
		for _, t := range tags {
			if err := opts.Store.Tag(ctx, t, second.Manifest); err != nil {
				return nil, fmt.Errorf("tag %s: %w", t.Short(), err)
			}
		}
		return second, nil
	}
}

// gitCommitTime is the committer time of HEAD when the context is in a git checkout.
func gitCommitTime(ctx context.Context, dir string) (time.Time, error) {
	out, err := exec.CommandContext(ctx, "git", "-C", dir, "log", "-1", "--format=%ct").Output()
	if err != nil {
		return time.Time{}, errors.New("the context is not a git checkout with commits")
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("git commit time %q: %w", out, err)
	}
	return time.Unix(n, 0).UTC(), nil
}
