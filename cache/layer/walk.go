package layer

import (
	"archive/tar"
	"context"
	"errors"
	"io"
)

// EachEntry calls fn for every entry of the tar r, with a reader of the entry's content, until
// the archive ends, fn fails or ctx is cancelled. Read errors are returned as they come.
func EachEntry(ctx context.Context, r io.Reader, fn func(*tar.Header, io.Reader) error) error {
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(hdr, tr); err != nil {
			return err
		}
	}
}
