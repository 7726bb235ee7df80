package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// SSHSource is one `kiln build --ssh ID=PATH[,PATH]`: an agent socket to forward, or
// private key files that kiln serves from an in-process agent.
type SSHSource struct {
	ID    string
	Paths []string // one agent socket, or key files; the caller resolves "default" to $SSH_AUTH_SOCK
}

// sshAgent is what a RUN --mount=type=ssh socket serves: an upstream agent or kiln's keyring.
type sshAgent struct {
	socket  string      // forward to this agent socket
	keyring agent.Agent // or serve these keys
}

// openSSH checks every --ssh source before any step runs: sockets must be sockets, key
// files must parse (a passphrase-protected key needs an agent: ssh-add it first).
func openSSH(sources []SSHSource) (map[string]sshAgent, error) {
	out := map[string]sshAgent{}
	for _, src := range sources {
		if len(src.Paths) == 0 {
			return nil, fmt.Errorf("--ssh %s: no agent socket or key file given (for default, set SSH_AUTH_SOCK or give default=PATH)", src.ID)
		}
		if _, dup := out[src.ID]; dup {
			return nil, fmt.Errorf("--ssh %s: given twice", src.ID)
		}
		if fi, err := os.Stat(src.Paths[0]); err == nil && fi.Mode()&fs.ModeSocket != 0 {
			if len(src.Paths) > 1 {
				return nil, fmt.Errorf("--ssh %s: an agent socket (%s) cannot be combined with other paths", src.ID, src.Paths[0])
			}
			out[src.ID] = sshAgent{socket: src.Paths[0]}
			continue
		}
		kr := agent.NewKeyring()
		for _, p := range src.Paths {
			if err := addKeyFile(kr, p); err != nil {
				return nil, fmt.Errorf("--ssh %s: %w", src.ID, err)
			}
		}
		out[src.ID] = sshAgent{keyring: kr}
	}
	return out, nil
}

// maxKeyFile bounds a private key file read for --ssh.
const maxKeyFile = 1 << 20

func addKeyFile(kr agent.Agent, path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Size() > maxKeyFile {
		return fmt.Errorf("%s is neither an agent socket nor a private key file", path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	key, err := ssh.ParseRawPrivateKey(data)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		return fmt.Errorf("key %s has a passphrase: add it to an agent (ssh-add) and use --ssh default", path)
	}
	if err != nil {
		return fmt.Errorf("key %s: %w", path, err)
	}
	return kr.Add(agent.AddedKey{PrivateKey: key, Comment: filepath.Base(path)})
}

// sshSocket serves a RUN's ssh mount on a socket of its own for the step's duration, owned
// and moded as the mount asks (BuildKit's uid, gid, mode); the release closes it and every
// connection, so Ctrl-C leaves no socket behind. Only the socket is bound in: no key
// touches the layer or the disk.
func (s *env) sshSocket(ctx context.Context, m runMount, pm *preparedMounts) (string, bool, error) {
	a, ok := s.opts.SSH[m.sshID]
	if !ok {
		if m.required {
			return "", false, fmt.Errorf("ssh %q is required: pass it with --ssh %s (an agent socket or key files)", m.sshID, m.sshID)
		}
		return "", true, nil
	}
	// A unix socket path is limited to 108 bytes, which a store under a deep root exceeds.
	dir, err := os.MkdirTemp("", "kiln-ssh-")
	if err != nil {
		return "", false, err
	}
	sock := filepath.Join(dir, "agent.sock")
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "unix", sock)
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", false, fmt.Errorf("ssh socket: %w", err)
	}
	srv := &sshServer{l: l, a: a, conns: map[net.Conn]bool{}}
	pm.releases = append(pm.releases, func() { srv.close(); _ = os.RemoveAll(dir) })
	if err := os.Chmod(sock, fs.FileMode(m.mode)); err != nil {
		return "", false, err
	}
	if err := os.Lchown(sock, m.uid, m.gid); err != nil && os.Geteuid() == 0 {
		return "", false, err
	}
	srv.wg.Add(1)
	go srv.serve()
	return sock, false, nil
}

type sshServer struct {
	l     net.Listener
	a     sshAgent
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]bool
	done  bool
}

func (s *sshServer) serve() {
	defer s.wg.Done()
	for {
		c, err := s.l.Accept()
		if err != nil {
			return
		}
		if !s.track(c, true) {
			c.Close()
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.track(c, false)
			defer c.Close()
			s.handle(c)
		}()
	}
}

func (s *sshServer) handle(c net.Conn) {
	if s.a.keyring != nil {
		_ = agent.ServeAgent(s.a.keyring, c) // ends with the connection
		return
	}
	up, err := net.Dial("unix", s.a.socket)
	if err != nil {
		return // the client sees a closed connection: the agent is gone
	}
	if !s.track(up, true) {
		up.Close()
		return
	}
	defer s.track(up, false)
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, up); done <- struct{}{} }()
	<-done
}

// track adds or removes a connection; adding fails once the server is closed.
func (s *sshServer) track(c net.Conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !add {
		delete(s.conns, c)
		return true
	}
	if s.done {
		return false
	}
	s.conns[c] = true
	return true
}

func (s *sshServer) close() {
	s.mu.Lock()
	s.done = true
	_ = s.l.Close()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}
