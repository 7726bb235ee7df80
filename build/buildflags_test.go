package build

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/kiln-build/kiln/runtime"
)

// requestRunner records every RunRequest and, for steps with ssh sockets, lists the keys the
// step's agent socket offers while the step runs.
type requestRunner struct {
	fakeRunner
	mu   sync.Mutex
	reqs []RunRequest
	keys map[string][]string // mount target → key comments
}

func (r *requestRunner) Run(ctx context.Context, req RunRequest) error {
	r.mu.Lock()
	r.reqs = append(r.reqs, req)
	r.mu.Unlock()
	for _, m := range req.Mounts {
		if !strings.HasPrefix(m.Target, "/run/buildkit/ssh_agent") && m.Target != "/ssh" {
			continue
		}
		fi, err := os.Stat(m.Source)
		if err != nil || fi.Mode()&os.ModeSocket == 0 {
			return &ExitError{Code: 9}
		}
		c, err := net.Dial("unix", m.Source)
		if err != nil {
			return err
		}
		keys, err := agent.NewClient(c).List()
		c.Close()
		if err != nil {
			return err
		}
		r.mu.Lock()
		if r.keys == nil {
			r.keys = map[string][]string{}
		}
		for _, k := range keys {
			r.keys[m.Target] = append(r.keys[m.Target], k.Comment)
		}
		r.mu.Unlock()
	}
	return r.fakeRunner.Run(ctx, req)
}

func (r *requestRunner) last() RunRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reqs[len(r.reqs)-1]
}

// --network is the mode of every RUN that names none (or default); RUN --network wins.
// --add-host, --ulimit and --shm-size reach every step's container and key the step as
// BuildKit does: host names but not addresses.
func TestBuildRunDefaults(t *testing.T) {
	f := newFixture(t)
	r := &requestRunner{}
	bf := "FROM base\nRUN a\nRUN --network=host b\nRUN --network=default c\n"
	with := func(d RunDefaults) func(*Options) { return func(o *Options) { o.Runner, o.Run = r, d } }
	if _, _, err := f.build(bf, with(RunDefaults{})); err != nil {
		t.Fatal(err)
	}
	if got := []string{r.reqs[0].Network, r.reqs[1].Network, r.reqs[2].Network}; !slices.Equal(got, []string{"default", "host", "default"}) {
		t.Errorf("networks without --network: %v", got)
	}
	if _, _, err := f.build(bf, with(RunDefaults{Network: "default"})); err != nil || r.count() != 3 {
		t.Fatalf("--network=default must keep the keys: %d runs, %v", r.count(), err)
	}
	if _, _, err := f.build(bf, with(RunDefaults{Network: "none"})); err != nil {
		t.Fatal(err)
	}
	if r.count() != 6 { // b's own network is unchanged, but its parent is not
		t.Fatalf("--network=none must rerun the steps: %d runs", r.count())
	}
	got := map[string]string{}
	for _, q := range r.reqs[3:] {
		got[q.Args[len(q.Args)-1]] = q.Network
	}
	if got["a"] != "none" || got["b"] != "host" || got["c"] != "none" {
		t.Errorf("--network=none: %v", got)
	}

	db := runtime.HostEntry{Name: "db", IP: netip.MustParseAddr("10.0.0.5")}
	d := RunDefaults{ExtraHosts: []runtime.HostEntry{db}, Ulimits: []runtime.Ulimit{{Name: "nofile", Soft: 10, Hard: 20}}, ShmSize: 1 << 27}
	bf = "FROM base\nRUN limits\n"
	if _, _, err := f.build(bf, with(d)); err != nil {
		t.Fatal(err)
	}
	q := r.last()
	if !slices.Equal(q.ExtraHosts, d.ExtraHosts) || !slices.Equal(q.Ulimits, d.Ulimits) || q.ShmSize != 1<<27 {
		t.Errorf("request %+v", q)
	}
	n := r.count()
	d.ExtraHosts[0].IP = netip.MustParseAddr("10.0.0.6")
	if _, _, err := f.build(bf, with(d)); err != nil || r.count() != n {
		t.Errorf("another address for the same --add-host name must hit the cache: %d runs, %v", r.count(), err)
	}
	d.ShmSize = 1 << 28
	if _, _, err := f.build(bf, with(d)); err != nil || r.count() != n+1 {
		t.Errorf("another --shm-size must miss: %d runs, %v", r.count(), err)
	}
	d.Ulimits[0].Soft = 11
	if _, _, err := f.build(bf, with(d)); err != nil || r.count() != n+2 {
		t.Errorf("another --ulimit must miss: %d runs, %v", r.count(), err)
	}
}

// A secret with env= is a variable of that step only: not in its config, its layer or its key.
func TestRunSecretEnv(t *testing.T) {
	f := newFixture(t)
	r := &requestRunner{}
	bf := "FROM base\nRUN --mount=type=secret,id=tok,env=TOKEN write /out env\nRUN --mount=type=secret,id=tok,env=T2,target=/t cat-mount /t\n"
	run := func(val string) (*Image, *events, error) {
		return f.build(bf, func(o *Options) { o.Runner, o.Secrets = r, map[string][]byte{"tok": []byte(val)} })
	}
	img, ev, err := run("s3cr3t-v4lue")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.reqs[0].SecretEnv, []string{"TOKEN=s3cr3t-v4lue"}) || slices.ContainsFunc(r.reqs[0].Env, func(e string) bool { return strings.Contains(e, "s3cr3t") }) {
		t.Errorf("first step: SecretEnv %v Env %v", r.reqs[0].SecretEnv, r.reqs[0].Env)
	}
	if !slices.Equal(r.reqs[1].SecretEnv, []string{"T2=s3cr3t-v4lue"}) || len(r.reqs[1].Mounts) != 1 || r.reqs[1].Mounts[0].Target != "/t" {
		t.Errorf("second step (env and file): %+v", r.reqs[1])
	}
	if len(r.reqs[0].Mounts) != 0 {
		t.Errorf("env= alone mounts no file: %+v", r.reqs[0].Mounts)
	}
	for p, c := range f.files(img) {
		if strings.Contains(c, "s3cr3t") {
			t.Errorf("%s in the layer holds the secret", p)
		}
	}
	if strings.Contains(ev.logs(), "s3cr3t") {
		t.Errorf("the log shows the secret")
	}
	if cfg, _ := img.Config.Config.Env, 0; slices.ContainsFunc(cfg, func(e string) bool { return strings.Contains(e, "s3cr3t") }) {
		t.Errorf("the image config holds the secret")
	}
	if _, _, err := run("another-value"); err != nil || r.count() != 2 {
		t.Errorf("a changed secret must not miss the cache: %d runs, %v", r.count(), err)
	}
	_, _, err = f.build("FROM base\nRUN --mount=type=secret,id=gone,env=X,required x\n", func(o *Options) { o.Runner = r })
	if err == nil || !strings.Contains(err.Error(), "--secret id=gone") {
		t.Errorf("missing required secret: %v", err)
	}
}

func writeKey(t *testing.T, path string) ssh.PublicKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	sp, _ := ssh.NewPublicKey(pub)
	return sp
}

// RUN --mount=type=ssh gets a socket of its own at BuildKit's path with SSH_AUTH_SOCK set,
// served from key files by kiln's agent or forwarded to an agent socket; the socket is
// gone after the step and the key is in no layer and no key.
func TestRunSSHMount(t *testing.T) {
	f := newFixture(t)
	r := &requestRunner{}
	keyDir := t.TempDir()
	writeKey(t, filepath.Join(keyDir, "id_a"))
	writeKey(t, filepath.Join(keyDir, "id_b"))

	// An upstream agent on a socket, as $SSH_AUTH_SOCK would be.
	kr := agent.NewKeyring()
	_, up, _ := ed25519.GenerateKey(rand.Reader)
	if err := kr.Add(agent.AddedKey{PrivateKey: up, Comment: "upstream"}); err != nil {
		t.Fatal(err)
	}
	sockDir, err := os.MkdirTemp("", "agent-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	l, err := net.Listen("unix", filepath.Join(sockDir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _ = agent.ServeAgent(kr, c) }()
		}
	}()

	bf := "FROM base\nRUN --mount=type=ssh --mount=type=ssh,id=keys,target=/ssh,required write /out x\n"
	sources := []SSHSource{{ID: "default", Paths: []string{l.Addr().String()}},
		{ID: "keys", Paths: []string{filepath.Join(keyDir, "id_a"), filepath.Join(keyDir, "id_b")}}}
	img, _, err := f.build(bf, func(o *Options) { o.Runner, o.SSH = r, sources })
	if err != nil {
		t.Fatal(err)
	}
	if got := r.keys["/run/buildkit/ssh_agent.0"]; !slices.Equal(got, []string{"upstream"}) {
		t.Errorf("forwarded agent offers %v", got)
	}
	if got := r.keys["/ssh"]; !slices.Equal(got, []string{"id_a", "id_b"}) {
		t.Errorf("kiln's agent offers %v", got)
	}
	q := r.last()
	if !slices.Contains(q.Env, "SSH_AUTH_SOCK=/run/buildkit/ssh_agent.0") {
		t.Errorf("env %v", q.Env)
	}
	for _, m := range q.Mounts {
		if _, err := os.Stat(m.Source); err == nil {
			t.Errorf("socket %s outlived the step", m.Source)
		}
	}
	if _, ok := f.files(img)["/run/buildkit/ssh_agent.0"]; ok {
		t.Errorf("the socket's mount point is in the layer")
	}
	n := r.count()
	writeKey(t, filepath.Join(keyDir, "id_a")) // another key under the same id: still cached
	if _, _, err := f.build(bf, func(o *Options) { o.Runner, o.SSH = r, sources }); err != nil || r.count() != n {
		t.Errorf("a changed key must not miss the cache: %d runs, %v", r.count(), err)
	}
	if _, _, err := f.build(bf, func(o *Options) { o.Runner, o.NoCache = r, true }); err == nil || !strings.Contains(err.Error(), "--ssh keys") {
		t.Errorf("missing required ssh: %v", err)
	}
	if err := os.WriteFile(filepath.Join(keyDir, "junk"), []byte("nope"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = f.build(bf, func(o *Options) {
		o.Runner, o.SSH = r, []SSHSource{{ID: "keys", Paths: []string{filepath.Join(keyDir, "junk")}}}
	})
	if err == nil || !strings.Contains(err.Error(), "--ssh keys") {
		t.Errorf("a bad key file: %v", err)
	}
}

// --annotation lands in the image manifest (buildx's default and its manifest: prefix);
// what kiln's single manifest has no place for is refused.
func TestAnnotations(t *testing.T) {
	a, err := ParseAnnotations([]string{"org.opencontainers.image.title=app", "manifest:a.b=c=d", "manifest[" + HostPlatform + "]:x=", "plain:colon=1"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"org.opencontainers.image.title": "app", "a.b": "c=d", "x": "", "plain:colon": "1"}
	if !maps.Equal(a, want) {
		t.Errorf("parsed %v", a)
	}
	for _, bad := range []string{"novalue", "=v", "index:k=v", "manifest-descriptor:k=v", "manifest[windows/arm]:k=v", "manifest:=v"} {
		if _, err := ParseAnnotations([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	f := newFixture(t)
	img, _, err := f.build("FROM base\n", func(o *Options) { o.Annotations = want })
	if err != nil {
		t.Fatal(err)
	}
	im, err := f.store.Image(img.Manifest.Digest)
	if err != nil {
		t.Fatal(err)
	}
	m, err := im.Manifest()
	if err != nil || !maps.Equal(m.Annotations, want) {
		t.Errorf("manifest annotations %v, %v", m.Annotations, err)
	}
	plain, _, err := f.build("FROM base\n", nil)
	if err != nil || plain.Manifest.Digest == img.Manifest.Digest {
		t.Errorf("without annotations: %v, same digest", err)
	}
}

// blockingRunner reports a step's mounts, then runs until its context ends (a Ctrl-C).
type blockingRunner struct{ started chan []RunMount }

func (r *blockingRunner) Run(ctx context.Context, req RunRequest) error {
	r.started <- req.Mounts
	<-ctx.Done()
	return ctx.Err()
}

// A cancelled build (Ctrl-C) closes the step's ssh socket and removes it.
func TestSSHSocketGoneOnCancel(t *testing.T) {
	f := newFixture(t)
	key := filepath.Join(t.TempDir(), "id")
	writeKey(t, key)
	r := &blockingRunner{started: make(chan []RunMount, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	if err := os.WriteFile(filepath.Join(f.dir, "Buildfile"), []byte("FROM base\nRUN --mount=type=ssh x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	go func() {
		_, err := Build(ctx, Options{ContextDir: f.dir, Store: f.store, Resolver: storeResolver{f.store}, Jobs: 1, Runner: r,
			SSH: []SSHSource{{ID: "default", Paths: []string{key}}}})
		done <- err
	}()
	mounts := <-r.started
	if len(mounts) != 1 {
		t.Fatalf("mounts %+v", mounts)
	}
	sock := mounts[0].Source
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("socket while the step runs: %v", err)
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatal("a cancelled build succeeded")
	}
	if _, err := os.Stat(filepath.Dir(sock)); !os.IsNotExist(err) {
		t.Errorf("the socket's dir outlived the cancelled build: %v", err)
	}
}
