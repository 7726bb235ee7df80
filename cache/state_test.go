package cache

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Concurrent read-modify-write cycles of one state file lose nothing: each Store (as each
// kiln process) takes the file's lock.
func TestUpdateStateIsSerialized(t *testing.T) {
	s := openStore(t)
	const n = 16
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			other, err := Open(s.Root())
			if err != nil {
				errs <- err
				return
			}
			defer other.Close()
			errs <- other.UpdateState(context.Background(), "list", func(old []byte) ([]byte, error) {
				return append(old, []byte(strconv.Itoa(i)+"\n")...), nil
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	data, err := s.ReadState("list")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(data), "\n"); got != n {
		t.Fatalf("%d of %d updates kept", got, n)
	}
}
