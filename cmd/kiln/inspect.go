package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/kiln-build/kiln/cache"
)

// imageInspect is `kiln inspect`'s view of an image, shaped like docker's.
type imageInspect struct {
	ID           string          `json:"Id"`
	RepoTags     []string        `json:"RepoTags"`
	Digest       string          `json:"Digest"`
	Created      time.Time       `json:"Created"`
	Author       string          `json:"Author,omitempty"`
	Architecture string          `json:"Architecture"`
	Os           string          `json:"Os"`
	Config       v1.Config       `json:"Config"`
	History      []v1.History    `json:"History"`
	RootFS       v1.RootFS       `json:"RootFS"`
	Layers       []v1.Descriptor `json:"Layers"`
	Size         int64           `json:"Size"`
}

func newInspectCmd(g *globalOptions) *cobra.Command {
	var format string
	var attestations bool
	c := &cobra.Command{
		Use:   "inspect NAME|ID [NAME|ID...]",
		Short: "Show details of containers, images or volumes as JSON",
		Long:  "Show details of containers (state, pid, exit code, mounts, network) or images (config, history,\nlayers) or volumes as a JSON array. Like docker, a container of that name or id wins over an image,\nan image over a volume.",
		Args:  argsRange(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.openStore()
			if err != nil {
				return err
			}
			defer s.Close()
			if attestations {
				return printAttestations(cmd.OutOrStdout(), s, args)
			}
			cs, err := g.openContainers()
			if err != nil {
				return err
			}
			out := []json.RawMessage{}
			for _, ref := range args {
				var info any
				if c, cerr := cs.Get(ref); cerr == nil {
					st, err := c.State()
					if err != nil {
						return err
					}
					info = inspectContainer(c, st)
				} else if info, err = inspectImage(s, ref); err != nil {
					if !strings.HasPrefix(err.Error(), "no such image") {
						return err
					}
					v, verr := cs.Volume(ref) // docker's order: containers, images, then volumes
					if verr != nil {
						return fmt.Errorf("no such container, image or volume: %s", ref)
					}
					info = inspectVolume(v)
				}
				raw, err := json.Marshal(info)
				if err != nil {
					return err
				}
				out = append(out, raw)
			}
			return writeInspect(cmd.OutOrStdout(), format, out)
		},
	}
	c.Flags().StringVarP(&format, "format", "f", "", "Go template per object, e.g. {{.State.Status}} or {{json .Config}}")
	c.Flags().BoolVar(&attestations, "attestations", false, "print the images' attestations (in-toto statements: SLSA provenance, SBOM) as a JSON array")
	return c
}

// printAttestations writes the in-toto statements attached to the images as one JSON array.
func printAttestations(w io.Writer, s *cache.Store, refs []string) error {
	out := []cache.Statement{}
	for _, ref := range refs {
		desc, _, err := s.Lookup(ref)
		if errors.Is(err, cache.ErrNotFound) {
			return fmt.Errorf("no such image: %s", ref)
		}
		if err != nil {
			return err
		}
		sts, err := s.Attestations(desc)
		if err != nil {
			return fmt.Errorf("image %s: %w", ref, err)
		}
		out = append(out, sts...)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "    ")
	return enc.Encode(out)
}

// writeInspect prints inspected objects as docker does: a JSON array indented by four spaces,
// or each object through the --format template.
func writeInspect(w io.Writer, format string, objs []json.RawMessage) error {
	if format != "" {
		return writeInspectFormat(w, format, objs)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "    ")
	return enc.Encode(objs)
}

// writeInspectFormat renders each inspected object (as its JSON document) through a template.
func writeInspectFormat(w io.Writer, format string, objs []json.RawMessage) error {
	f, err := parseFormat(format, "")
	if err != nil {
		return err
	}
	docs := make([]map[string]any, 0, len(objs))
	for _, raw := range objs {
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber() // sizes and pids print as docker's integers, not 1.2e+06
		if err := dec.Decode(&m); err != nil {
			return err
		}
		docs = append(docs, m)
	}
	return writeRows(w, f, docs, nil)
}

func inspectImage(s *cache.Store, ref string) (imageInspect, error) {
	desc, _, err := s.Lookup(ref)
	if errors.Is(err, cache.ErrNotFound) {
		return imageInspect{}, fmt.Errorf("no such image: %s", ref)
	}
	if err != nil {
		return imageInspect{}, err
	}
	img, err := s.Image(desc.Digest)
	if err != nil {
		return imageInspect{}, fmt.Errorf("image %s: %w", ref, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return imageInspect{}, fmt.Errorf("image %s: %w", ref, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return imageInspect{}, fmt.Errorf("image %s: %w", ref, err)
	}
	info := imageInspect{ID: m.Config.Digest.String(), RepoTags: []string{}, Digest: desc.Digest.String(),
		Created: cf.Created.Time, Author: cf.Author, Architecture: cf.Architecture, Os: cf.OS,
		Config: cf.Config, History: cf.History, RootFS: cf.RootFS, Layers: m.Layers, Size: m.Config.Size}
	for _, l := range m.Layers {
		info.Size += l.Size
	}
	tagged, err := s.List()
	if err != nil {
		return imageInspect{}, err
	}
	for _, t := range tagged {
		if t.Descriptor.Digest == desc.Digest {
			info.RepoTags = append(info.RepoTags, t.Name.Short())
		}
	}
	return info, nil
}
