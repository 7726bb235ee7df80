package cache

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func BenchmarkWriteBlob16MiB(b *testing.B) {
	s := openStore(b)
	data := make([]byte, 16<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		rand.Read(data[:64]) // a new digest each time, so every write really commits
		if _, _, err := s.WriteBlob(context.Background(), bytes.NewReader(data), v1.Hash{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTag(b *testing.B) {
	s := openStore(b)
	_, d := storeRandomImage(b, s, 1)
	i := 0
	for b.Loop() {
		i++
		if err := s.Tag(context.Background(), mustName(b, fmt.Sprintf("img%d", i%100)), d); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCacheGetHit(b *testing.B) {
	s := openStore(b)
	key := "sha256:" + strings.Repeat("a", 64)
	if err := s.CachePut(key, CacheRecord{Meta: map[string]string{"k": "v"}}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, ok, err := s.CacheGet(key); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// BenchmarkLookup100 looks up by name and by ID prefix among 100 tagged images.
func BenchmarkLookup100(b *testing.B) {
	s := openStore(b)
	var last v1.Image
	for i := range 100 {
		img, d := storeRandomImage(b, s, 1)
		if err := s.Tag(context.Background(), mustName(b, fmt.Sprintf("img%d", i)), d); err != nil {
			b.Fatal(err)
		}
		last = img
	}
	id, _ := last.ConfigName()
	for _, ref := range []string{"img50", id.Hex[:12]} {
		b.Run(map[bool]string{true: "name", false: "id-prefix"}[ref == "img50"], func(b *testing.B) {
			for b.Loop() {
				if _, _, err := s.Lookup(ref); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkOpenClose(b *testing.B) {
	root := filepath.Join(b.TempDir(), "root")
	for b.Loop() {
		s, err := Open(root)
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}
