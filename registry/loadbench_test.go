package registry

import (
	"bytes"
	"context"
	"testing"
)

func BenchmarkLoadDockerArchive50MB(b *testing.B) {
	s := openStore(b)
	storeRandomImage(b, s)
	var buf bytes.Buffer
	if err := Save(context.Background(), s, []string{"bench"}, DockerArchive, &buf); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchImageSize)
	for range b.N {
		b.StopTimer()
		dst := openStore(b)
		b.StartTimer()
		if _, err := Load(context.Background(), dst, bytes.NewReader(buf.Bytes())); err != nil {
			b.Fatal(err)
		}
	}
}
