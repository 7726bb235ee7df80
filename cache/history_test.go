package cache

import (
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
)

// Empty-layer steps take no layer; the rest take the manifest's layers in order; newest first.
func TestImageHistory(t *testing.T) {
	base, err := random.Image(100, 2)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := base.ConfigFile()
	cf = cf.DeepCopy()
	at := func(h int) v1.Time { return v1.Time{Time: time.Date(2024, 1, 1, h, 0, 0, 0, time.UTC)} }
	cf.History = []v1.History{{Created: at(1), CreatedBy: "ADD rootfs"}, {Created: at(2), CreatedBy: "ENV A=1", EmptyLayer: true},
		{Created: at(3), CreatedBy: "RUN make", Comment: "built"}}
	img, err := mutate.ConfigFile(base, cf)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := img.Manifest()
	h, err := ImageHistory(img)
	if err != nil {
		t.Fatal(err)
	}
	want := []HistoryEntry{
		{Created: at(3).Time, CreatedBy: "RUN make", Comment: "built", Size: m.Layers[1].Size, Layer: m.Layers[1].Digest},
		{Created: at(2).Time, CreatedBy: "ENV A=1"},
		{Created: at(1).Time, CreatedBy: "ADD rootfs", Size: m.Layers[0].Size, Layer: m.Layers[0].Digest},
	}
	if len(h) != len(want) {
		t.Fatalf("history %+v", h)
	}
	for i := range want {
		if h[i] != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, h[i], want[i])
		}
	}
}
