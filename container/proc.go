package container

import (
	"os"
	"strconv"
	"strings"
)

// procStart returns a process's start time in clock ticks from /proc/<pid>/stat; 0 when the
// process does not exist or is a zombie (dead, only waiting to be reaped).
func procStart(pid int) uint64 {
	if pid <= 0 {
		return 0
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name may hold spaces and parentheses: the fields start after the last ')'.
	i := strings.LastIndexByte(string(data), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return 0
	}
	n, _ := strconv.ParseUint(f[19], 10, 64)
	return n
}

// processAlive reports whether pid still is the process that started at start.
func processAlive(pid int, start uint64) bool {
	return pid > 0 && start != 0 && procStart(pid) == start
}
