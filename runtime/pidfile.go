package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// waitPidFile waits until the runtime has written file (its --pid-file) and returns a pidfd of
// that process (so no reused pid is ever signalled) and the pid. It watches the directory with inotify
// rather than polling; it returns -1 when exited closes first (the runtime gave up) or ctx ends.
// exited must close once the runtime process has ended: the inotify descriptor is closed then.
func waitPidFile(ctx context.Context, file string, exited <-chan struct{}) (pidfd, pid int, err error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return -1, 0, fmt.Errorf("watch %s: %w", file, err)
	}
	wd, err := unix.InotifyAddWatch(fd, filepath.Dir(file), unix.IN_CLOSE_WRITE|unix.IN_MOVED_TO)
	if err != nil {
		unix.Close(fd)
		return -1, 0, fmt.Errorf("watch %s: %w", file, err)
	}
	events := os.NewFile(uintptr(fd), "inotify") // non-blocking: reads park in the poller, Close wakes them
	var done atomic.Bool
	found := make(chan [2]int, 1)
	go func() {
		buf := make([]byte, 4096)
		for {
			if fd, pid := openPidFile(file); fd >= 0 { // checked after the watch exists: no event is missed
				found <- [2]int{fd, pid}
				return
			}
			if done.Load() {
				found <- [2]int{-1, 0}
				return
			}
			if _, err := events.Read(buf); err != nil {
				found <- [2]int{-1, 0}
				return
			}
		}
	}()
	var got [2]int
	received := true
	select {
	case got = <-found:
	case <-exited:
		received = false
	case <-ctx.Done():
		received = false
	}
	// Closing an inotify instance right after its watch went away waits for the kernel's
	// mark reaper (an SRCU grace period, often 5-20 ms, which a --rm run would spend on its
	// start): remove the watch now, which wakes the reader with IN_IGNORED, and close the
	// descriptor once the runtime has exited, when that wait is long over.
	done.Store(true)
	closed := false
	if _, err := unix.InotifyRmWatch(fd, uint32(wd)); err != nil {
		events.Close() // the watch is gone already (its directory was removed): wake the reader
		closed = true
	}
	if !received {
		got = <-found // none, or the one found just now
	}
	if !closed {
		go func() {
			<-exited
			events.Close()
		}()
	}
	return got[0], got[1], nil
}

// openPidFile returns a pidfd for the pid in file and the pid, -1 while the file is missing or incomplete.
func openPidFile(file string) (int, int) {
	data, err := os.ReadFile(file)
	if err != nil {
		return -1, 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return -1, 0
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return -1, 0
	}
	return fd, pid
}
