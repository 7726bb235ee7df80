package cache

import (
	"strings"
	"testing"
)

func TestParseName(t *testing.T) {
	const dg = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		in, str, short, repo, tag, digest string
	}{
		{"hello", "docker.io/library/hello:latest", "hello:latest", "docker.io/library/hello", "latest", ""},
		{"hello:1.2", "docker.io/library/hello:1.2", "hello:1.2", "docker.io/library/hello", "1.2", ""},
		{"docker.io/hello", "docker.io/library/hello:latest", "hello:latest", "docker.io/library/hello", "latest", ""},
		{"index.docker.io/library/hello", "docker.io/library/hello:latest", "hello:latest", "docker.io/library/hello", "latest", ""},
		{"user/app:v1", "docker.io/user/app:v1", "user/app:v1", "docker.io/user/app", "v1", ""},
		{"library/a/b", "docker.io/library/a/b:latest", "library/a/b:latest", "docker.io/library/a/b", "latest", ""},
		{"localhost:5000/a/b", "localhost:5000/a/b:latest", "localhost:5000/a/b:latest", "localhost:5000/a/b", "latest", ""},
		{"localhost:5000/a/b:1", "localhost:5000/a/b:1", "localhost:5000/a/b:1", "localhost:5000/a/b", "1", ""},
		{"ghcr.io/o/r:t", "ghcr.io/o/r:t", "ghcr.io/o/r:t", "ghcr.io/o/r", "t", ""},
		{"x@" + dg, "docker.io/library/x@" + dg, "x@" + dg, "docker.io/library/x", "", dg},
		{"foo:5000", "docker.io/library/foo:5000", "foo:5000", "docker.io/library/foo", "5000", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			n, err := ParseName(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			got := [5]string{n.String(), n.Short(), n.Repository(), n.Tag(), n.Digest()}
			want := [5]string{tt.str, tt.short, tt.repo, tt.tag, tt.digest}
			if got != want {
				t.Errorf("got %q, want %q", got, want)
			}
			again, err := ParseName(n.Short())
			if err != nil || again != n {
				t.Errorf("Short() %q reparses to %v, %v", n.Short(), again, err)
			}
		})
	}
}

func TestParseNameErrors(t *testing.T) {
	for _, in := range []string{"", "HELLO", "a:b:c", "hello:", "x@sha256:123", "-x", "a b"} {
		_, err := ParseName(in)
		if err == nil || !strings.HasPrefix(err.Error(), "invalid reference format: ") {
			t.Errorf("ParseName(%q) error = %v, want invalid reference format", in, err)
		}
	}
	_, err := ParseName("HELLO")
	if !strings.Contains(err.Error(), "HELLO") || !strings.Contains(err.Error(), "repository") {
		t.Errorf("error should name the problem: %v", err)
	}
}

func FuzzParseName(f *testing.F) {
	for _, s := range []string{"hello", "localhost:5000/a/b:1", "docker.io/library/x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"Registry.IO/x", "a/b/c:d", "index.docker.io/hello", "127.0.0.1:5000/x", "[::1]:5000/x:y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseName(s)
		if err != nil {
			return
		}
		for _, form := range []string{n.String(), n.Short()} {
			again, err := ParseName(form)
			if err != nil {
				t.Fatalf("%q → %q does not parse: %v", s, form, err)
			}
			if again != n {
				t.Fatalf("%q → %q parses to %#v, want %#v", s, form, again, n)
			}
		}
	})
}
