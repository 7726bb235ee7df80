package runtime

import (
	"strings"
	"testing"
)

func TestParseUlimit(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"nofile=1024:2048", "nofile=1024:2048"},
		{"nofile=512", "nofile=512:512"},
		{"core=-1", "core=-1:-1"},
		{"nproc=10:-1", "nproc=10:-1"},
	} {
		u, err := ParseUlimit(tc.in)
		if err != nil || u.String() != tc.want {
			t.Errorf("ParseUlimit(%q) = %v, %v; want %s", tc.in, u, err, tc.want)
		}
	}
	for _, bad := range []string{"nofile", "bogus=1", "nofile=2048:1024", "nofile=a", "nofile=1:2:3", "nofile=-1:10", "nofile=-5"} {
		if _, err := ParseUlimit(bad); err == nil || !strings.Contains(err.Error(), "--ulimit") {
			t.Errorf("ParseUlimit(%q) = %v, want an error naming --ulimit", bad, err)
		}
	}
}

func TestParseAddHost(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"db:10.0.0.5", "db:10.0.0.5"},
		{"db=10.0.0.5", "db:10.0.0.5"},
		{"v6:::1", "v6:::1"},
		{"v6=[2001:db8::1]", "v6:2001:db8::1"},
		{"gw:host-gateway", "gw:host-gateway"},
	} {
		h, err := ParseAddHost(tc.in)
		if err != nil || h.String() != tc.want {
			t.Errorf("ParseAddHost(%q) = %v, %v; want %s", tc.in, h, err, tc.want)
		}
	}
	for _, bad := range []string{"db", "db:", ":1.2.3.4", "db:notanip", "db:1.2.3", "a b:1.2.3.4"} {
		if _, err := ParseAddHost(bad); err == nil || !strings.Contains(err.Error(), "--add-host") {
			t.Errorf("ParseAddHost(%q) = %v, want an error naming --add-host", bad, err)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"64m": 64 << 20, "1g": 1 << 30, "4096": 4096, "512k": 512 << 10} {
		if n, err := ParseSize("--shm-size", in); err != nil || n != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, n, err, want)
		}
	}
	for _, bad := range []string{"", "0", "-1m", "lots"} {
		if _, err := ParseSize("--shm-size", bad); err == nil || !strings.Contains(err.Error(), "--shm-size") {
			t.Errorf("ParseSize(%q) = %v, want an error naming --shm-size", bad, err)
		}
	}
}
