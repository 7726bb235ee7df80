package ctxio

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestCopy(t *testing.T) {
	var out bytes.Buffer
	n, err := Copy(context.Background(), &out, strings.NewReader(strings.Repeat("x", 3<<20)))
	if err != nil || n != 3<<20 || out.Len() != 3<<20 {
		t.Fatalf("Copy = %d, %v (%d bytes out)", n, err, out.Len())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Copy(ctx, &out, strings.NewReader("y")); err != context.Canceled {
		t.Errorf("cancelled Copy: %v", err)
	}
}
