package cache

import (
	"os"
	"path/filepath"
	"strconv"
)

// RootEnv names the environment variable that overrides the store root for every kiln command.
const RootEnv = "KILN_ROOT"

// DefaultRoot is where kiln keeps its store when no --root is given: $KILN_ROOT, else
// /var/lib/kiln for root, else $XDG_DATA_HOME/kiln (~/.local/share/kiln).
func DefaultRoot() string {
	if r := os.Getenv(RootEnv); r != "" {
		return r
	}
	if os.Geteuid() == 0 {
		return "/var/lib/kiln"
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "kiln")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "kiln")
	}
	return filepath.Join(os.TempDir(), "kiln-"+strconv.Itoa(os.Geteuid()))
}
