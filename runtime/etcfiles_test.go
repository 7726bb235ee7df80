package runtime

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// With the host network the container gets copies of the host's /etc/hosts and resolv.conf:
// it sees their entries and may change them, but the host's files never change (issue 10.1).
func TestHostNetworkEtcFilesAreCopies(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt, state string) {
		files := []string{"/etc/hosts", "/etc/resolv.conf"}
		before := map[string][]byte{}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Skipf("host has no %s: %v", f, err)
			}
			before[f] = data
		}
		s := testSpec(t, rt, state, "sh", "-c",
			"cat /etc/hosts; echo '# kiln-was-here' >> /etc/hosts && echo '# kiln-was-here' >> /etc/resolv.conf && echo appended")
		s.Network = NetworkHost
		st, out := run(t, s)
		if st != 0 || !strings.Contains(out, "appended") {
			t.Fatalf("status %d, output:\n%s", st, out)
		}
		if !strings.Contains(out, string(before["/etc/hosts"])) {
			t.Errorf("the container did not see the host's /etc/hosts:\n%s", out)
		}
		for _, f := range files {
			after, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(after, before[f]) {
				os.WriteFile(f, before[f], 0o644) //nolint:errcheck // repair the host for the other tests
				t.Errorf("the container changed the host's %s", f)
			}
		}
	})
}
