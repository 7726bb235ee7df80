package container

import (
	"os"
	"strconv"
	"strings"
)

// procStart returns a process's start time in clock ticks from /proc/<pid>/stat; 0 when the
// process does not exist or is a zombie (dead, only waiting to be reaped).
func procStart(pid int) uint64 {
	start, zombie := statStart(pid)
	if zombie {
		return 0
	}
	return start
}

// rawStart is procStart counting zombies as present.
func rawStart(pid int) uint64 {
	start, _ := statStart(pid)
	return start
}

// statStart reads the start time and whether the process is a zombie.
func statStart(pid int) (uint64, bool) {
	if pid <= 0 {
		return 0, false
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name may hold spaces and parentheses: the fields start after the last ')'.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 20 {
		return 0, false
	}
	n, _ := strconv.ParseUint(f[19], 10, 64)
	return n, f[0] == "Z" || f[0] == "X"
}

// processAlive reports whether pid still is the process that started at start.
func processAlive(pid int, start uint64) bool {
	return pid > 0 && start != 0 && procStart(pid) == start
}
