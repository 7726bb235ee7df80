// Package testregistry starts Debian's docker-registry for tests that need a real registry.
package testregistry

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Start runs Debian's docker-registry (distribution 2.8) on a free loopback
// port with a temporary storage dir; with users ("name:password"), it requires htpasswd
// basic auth. It returns "127.0.0.1:PORT".
func Start(t testing.TB, users ...string) string {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Skip("needs docker-registry (apt-get install docker-registry)")
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), addr)
	if len(users) > 0 {
		cfg += fmt.Sprintf("auth:\n  htpasswd:\n    realm: kiln-test\n    path: %s\n", writeHtpasswd(t, dir, users))
	}
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", cfgPath)
	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
	})
	waitForRegistry(t, addr, filepath.Join(dir, "registry.log"))
	return addr
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func writeHtpasswd(t testing.TB, dir string, users []string) string {
	t.Helper()
	path := filepath.Join(dir, "htpasswd")
	for i, u := range users {
		user, pass, _ := strings.Cut(u, ":")
		args := []string{"-bB", path, user, pass}
		if i == 0 {
			args = []string{"-cbB", path, user, pass}
		}
		if out, err := exec.Command("htpasswd", args...).CombinedOutput(); err != nil {
			t.Skipf("needs htpasswd (apache2-utils): %v %s", err, out)
		}
	}
	return path
}

// waitForRegistry polls /v2/ until the registry answers (200, or 401 with auth).
func waitForRegistry(t testing.TB, addr, logPath string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	log, _ := os.ReadFile(logPath)
	t.Fatalf("docker-registry did not start on %s:\n%s", addr, log)
}
