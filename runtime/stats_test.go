package runtime

import (
	"os"
	"path/filepath"
	"testing"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// The v2 files as the kernel writes them; this host may well be v1, so they are faked here.
func TestUsageCgroupV2(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"cpu.stat":       "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n",
		"memory.current": "10485760\n",
		"memory.stat":    "anon 8388608\nfile 2097152\ninactive_file 1048576\n",
		"memory.max":     "max\n",
		"pids.current":   "3\n",
		"io.stat":        "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n8:16 rbytes=1 wbytes=2 rios=1 wios=1\n",
	})
	var u Usage
	if err := u.readV2(dir); err != nil {
		t.Fatal(err)
	}
	want := Usage{CPUNanos: 1500000, MemUsage: 9437184, Pids: 3, BlockRead: 4097, BlockWrite: 8194}
	if u != want {
		t.Errorf("v2 usage %+v, want %+v", u, want)
	}
	os.Remove(filepath.Join(dir, "cpu.stat"))
	if err := u.readV2(dir); err == nil {
		t.Error("no cpu.stat: no error")
	}
}

func TestUsageCgroupV1(t *testing.T) {
	cpu, mem, pids, blkio := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
	writeFiles(t, cpu, map[string]string{"cpuacct.usage": "123456789\n"})
	writeFiles(t, mem, map[string]string{"memory.usage_in_bytes": "4194304\n", "memory.limit_in_bytes": "67108864\n",
		"memory.stat": "cache 0\ntotal_inactive_file 1048576\n"})
	writeFiles(t, pids, map[string]string{"pids.current": "2\n"})
	writeFiles(t, blkio, map[string]string{"blkio.throttle.io_service_bytes_recursive": "8:0 Read 512\n8:0 Write 1024\n8:0 Sync 1536\n8:0 Total 1536\nTotal 1536\n"})
	var u Usage
	if err := u.readV1(map[string]string{"cpuacct": cpu, "memory": mem, "pids": pids, "blkio": blkio}); err != nil {
		t.Fatal(err)
	}
	want := Usage{CPUNanos: 123456789, MemUsage: 3145728, MemLimit: 67108864, Pids: 2, BlockRead: 512, BlockWrite: 1024}
	if u != want {
		t.Errorf("v1 usage %+v, want %+v", u, want)
	}
}
