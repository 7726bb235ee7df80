package runtime

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"testing"

	"github.com/moby/sys/mountinfo"
)

// In-memory files come from a tmpfs (never the disk), read-only, with the given owner and mode,
// and are gone after the run.
func TestRunFiles(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt, state string) {
		s := testSpec(t, rt, state, "sh", "-c", "cat /run/secrets/token; echo; stat -c '%a %u %g' /run/secrets/token; "+
			"grep ' /run/secrets/token ' /proc/mounts | cut -d' ' -f3; (echo x > /run/secrets/token) 2>/dev/null || echo read-only")
		s.Files = []File{{Target: "/run/secrets/token", Data: []byte("s3cr3t"), Mode: 0o440, GID: 1000}}
		st, out := run(t, s)
		if want := "s3cr3t\n440 0 1000\ntmpfs\nread-only\n"; st != 0 || out != want {
			t.Errorf("status %d, output %q, want %q", st, out, want)
		}
		if _, err := os.Stat(filesDir(state, s.ID)); !os.IsNotExist(err) {
			t.Errorf("in-memory files dir left after the run: %v", err)
		}
	})
}

// assertNoFiles checks that a run's in-memory files are unmounted and removed.
func assertNoFiles(t *testing.T, state, id string) {
	t.Helper()
	if mounted, _ := mountinfo.Mounted(filesDir(state, id)); mounted {
		t.Errorf("in-memory files of %s still mounted", id)
	}
	if _, err := os.Stat(filesDir(state, id)); !os.IsNotExist(err) {
		t.Errorf("in-memory files dir of %s left: %v", id, err)
	}
}

// A Spec written to disk (a container record) never carries its in-memory files.
func TestSpecNeverEncodesFiles(t *testing.T) {
	data, err := json.Marshal(Spec{ID: "x", Files: []File{{Target: "/run/secrets/t", Data: []byte("s3cr3t")}}})
	if err != nil || bytes.Contains(data, []byte("s3cr3t")) || bytes.Contains(data, []byte(base64.StdEncoding.EncodeToString([]byte("s3cr3t")))) {
		t.Errorf("encoded spec %s (%v)", data, err)
	}
}
