package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/kiln-build/kiln/registry"
)

// passwordEnv is where cosign, and so kiln, takes a private key's password from.
const passwordEnv = "COSIGN_PASSWORD"

func newGenerateKeyCmd() *cobra.Command {
	var prefix string
	c := &cobra.Command{
		Use:     "generate-key [--output-key-prefix PREFIX]",
		Aliases: []string{"generate-key-pair"},
		Short:   "Write a cosign-compatible signing key pair (PREFIX.key, PREFIX.pub)",
		Long: "Generate an ECDSA P-256 key pair in cosign's formats: PREFIX.key (mode 0600) holds the private key\n" +
			"encrypted with a password (scrypt and nacl/secretbox), PREFIX.pub the PEM public key. The password comes\n" +
			"from $" + passwordEnv + " or is asked on the terminal. Existing files are never replaced.",
		Example: "  COSIGN_PASSWORD=... kiln generate-key\n  kiln sign --key cosign.key localhost:5000/team/app:1.0",
		Args:    argsRange(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if prefix == "" {
				return usageError{errors.New("--output-key-prefix must not be empty")}
			}
			pw, err := keyPassword(cmd, true)
			if err != nil {
				return err
			}
			if err := registry.WriteKeyPair(prefix+".key", prefix+".pub", pw); err != nil {
				return fmt.Errorf("generate-key: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Private key written to %s.key\nPublic key written to %s.pub\n", prefix, prefix)
			return nil
		},
	}
	c.Flags().StringVar(&prefix, "output-key-prefix", "cosign", "write PREFIX.key and PREFIX.pub")
	return c
}

func newSignCmd(g *globalOptions) *cobra.Command {
	var key, referrersMode string
	var annotations []string
	c := &cobra.Command{
		Use:   "sign --key cosign.key [-a KEY=VALUE]... IMAGE",
		Short: "Sign an image in a registry with a cosign key",
		Long: "Sign the pushed image IMAGE (REGISTRY/REPO:TAG or @DIGEST) as `cosign sign --key` does: a simple-signing\n" +
			"payload naming its digest, signed with ECDSA, added to the signatures at tag sha256-HEX.sig in its\n" +
			"repository. --registry-referrers-mode=oci-1-1 also pushes it as an OCI 1.1 referrer of the image.\n" +
			"Nothing goes to a transparency log (cosign verify needs --insecure-ignore-tlog); keyless signing\n" +
			"(Fulcio, Rekor) needs those internet services and is not supported. Password: $" + passwordEnv + " or the terminal.",
		Example: "  kiln push app localhost:5000/team/app:1.0\n  kiln sign --key cosign.key localhost:5000/team/app:1.0",
		Args:    argsRange(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			so, err := signOptions(key, annotations, referrersMode)
			if err != nil {
				return err
			}
			pemBytes, err := registry.ReadKeyFile(key)
			if err != nil {
				return err
			}
			pw, err := keyPassword(cmd, false)
			if err != nil {
				return err
			}
			if so.Key, err = registry.ParsePrivateKey(pemBytes, pw); err != nil {
				return fmt.Errorf("key %s: %w", key, err)
			}
			s, err := g.openStore()
			if err != nil {
				return err
			}
			defer s.Close()
			so.Store = s
			opts, err := g.registry.options()
			if err != nil {
				return err
			}
			res, err := registry.Sign(cmd.Context(), args[0], so, opts...)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if res.Existing {
				fmt.Fprintf(out, "%s: already signed with this key at %s\n", res.Digest, res.Tag)
			} else {
				fmt.Fprintf(out, "%s: signature pushed to %s\n", res.Digest, res.Tag)
			}
			if so.Referrer {
				fmt.Fprintf(out, "%s: signature referrer %s\n", res.Digest, res.Referrer)
			}
			return nil
		},
	}
	c.Flags().StringVar(&key, "key", "", "cosign private key file (from kiln generate-key or cosign generate-key-pair)")
	c.Flags().StringArrayVarP(&annotations, "annotations", "a", nil, "extra KEY=VALUE claim in the signed payload")
	c.Flags().StringVar(&referrersMode, "registry-referrers-mode", "legacy", "legacy (the sha256-HEX.sig tag) or oci-1-1 (also an OCI 1.1 referrer)")
	return c
}

// signOptions checks sign's flags before any password is asked.
func signOptions(key string, annotations []string, referrersMode string) (registry.SignOptions, error) {
	var so registry.SignOptions
	if key == "" {
		return so, usageError{errors.New("sign needs --key cosign.key (make one with `kiln generate-key`); keyless signing is not supported")}
	}
	switch referrersMode {
	case "legacy", "":
	case "oci-1-1":
		so.Referrer = true
	default:
		return so, usageError{fmt.Errorf("--registry-referrers-mode %q: use legacy or oci-1-1", referrersMode)}
	}
	a, err := parseKeyValues(annotations, false)
	if err != nil {
		return so, usageError{fmt.Errorf("--annotations %w", err)}
	}
	so.Annotations = a
	return so, nil
}

func newVerifyCmd(g *globalOptions) *cobra.Command {
	var key string
	var annotations []string
	c := &cobra.Command{
		Use:   "verify --key cosign.pub [-a KEY=VALUE]... IMAGE",
		Short: "Verify an image's cosign signatures with a public key",
		Long: "Check the signatures of IMAGE (at its sha256-HEX.sig tag and its OCI 1.1 referrers) against the public\n" +
			"key and the image's digest, as `cosign verify --key --insecure-ignore-tlog` does, and print the verified\n" +
			"payloads as a JSON array. Exits 1 when no signature verifies. Keyless (certificate) signatures are not checked.",
		Example: "  kiln verify --key cosign.pub localhost:5000/team/app:1.0",
		Args:    argsRange(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if key == "" {
				return usageError{errors.New("verify needs --key cosign.pub")}
			}
			a, err := parseKeyValues(annotations, false)
			if err != nil {
				return usageError{fmt.Errorf("--annotations %w", err)}
			}
			pemBytes, err := registry.ReadKeyFile(key)
			if err != nil {
				return err
			}
			pub, err := registry.ParsePublicKey(pemBytes)
			if err != nil {
				return fmt.Errorf("key %s: %w", key, err)
			}
			opts, err := g.registry.options()
			if err != nil {
				return err
			}
			v, err := registry.Verify(cmd.Context(), args[0], registry.VerifyOptions{Key: pub, Annotations: a}, opts...)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Verification for %s@%s --\nThe following checks were performed on each of these signatures:\n"+
				"  - The cosign claims were validated\n  - The signatures were verified against the specified public key\n",
				strings.SplitN(args[0], "@", 2)[0], v.Digest)
			payloads := make([]json.RawMessage, len(v.Signatures))
			for i, s := range v.Signatures {
				payloads[i] = s.Payload
			}
			b, err := json.Marshal(payloads)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s\n", b)
			return err
		},
	}
	c.Flags().StringVar(&key, "key", "", "PEM public key file (cosign.pub)")
	c.Flags().StringArrayVarP(&annotations, "annotations", "a", nil, "KEY=VALUE claim every accepted signature must carry")
	return c
}

// keyPassword is $COSIGN_PASSWORD when set (even empty, as cosign), else asked on the
// terminal, twice when confirm.
func keyPassword(cmd *cobra.Command, confirm bool) ([]byte, error) {
	if pw, ok := os.LookupEnv(passwordEnv); ok {
		return []byte(pw), nil
	}
	in, ok := cmd.InOrStdin().(*os.File)
	if !ok || !isTerminal(in) {
		return nil, fmt.Errorf("no password: set %s (it may be empty) or run on a terminal", passwordEnv)
	}
	pw, err := readPassword(cmd.Context(), in, cmd.ErrOrStderr(), "Enter password for private key: ")
	if err != nil || !confirm {
		return pw, err
	}
	again, err := readPassword(cmd.Context(), in, cmd.ErrOrStderr(), "Enter password for private key again: ")
	if err != nil {
		return nil, err
	}
	if string(again) != string(pw) {
		return nil, errors.New("the passwords do not match")
	}
	return pw, nil
}

// readPassword reads one line from the terminal with echo off, restoring it after.
func readPassword(ctx context.Context, tty *os.File, prompt io.Writer, msg string) ([]byte, error) {
	fd := int(tty.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, fmt.Errorf("read password: %w", err)
	}
	quiet := *old
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON | unix.ISIG
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		return nil, fmt.Errorf("read password: %w", err)
	}
	defer unix.IoctlSetTermios(fd, unix.TCSETS, old) //nolint:errcheck // best effort: the terminal is going back to how it was
	fmt.Fprint(prompt, msg)
	type result struct {
		line string
		err  error
	}
	done := make(chan result, 1)
	go func() { // a terminal read cannot be interrupted: on Ctrl-C kiln exits and drops it
		line, err := bufio.NewReader(tty).ReadString('\n')
		done <- result{line, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-ctx.Done():
		r.err = ctx.Err()
	}
	fmt.Fprintln(prompt)
	if r.err != nil && !(errors.Is(r.err, io.EOF) && r.line != "") {
		return nil, fmt.Errorf("read password: %w", r.err)
	}
	return []byte(strings.TrimRight(r.line, "\r\n")), nil
}
