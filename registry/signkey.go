package registry

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"

	"github.com/kiln-build/kiln/internal/atomicfile"
)

// PEM block types of cosign's key files: cosign 2 and later write the sigstore one for
// private keys, cosign 1 wrote the cosign one; both hold the same encrypted PKCS#8 key.
const (
	sigstoreKeyType = "ENCRYPTED SIGSTORE PRIVATE KEY"
	cosignKeyType   = "ENCRYPTED COSIGN PRIVATE KEY"
	publicKeyType   = "PUBLIC KEY"
)

// maxKeyFile bounds what is read as a key file: a cosign key is well under a kilobyte.
const maxKeyFile = 64 << 10

// ErrWrongPassword reports a private key that does not decrypt with the password given.
var ErrWrongPassword = errors.New("wrong password for the private key")

// GenerateKeyPair makes an ECDSA P-256 key pair in cosign's formats: the private key as
// PKCS#8 encrypted with password (scrypt and nacl/secretbox, sigstore's JSON envelope) in
// an "ENCRYPTED SIGSTORE PRIVATE KEY" PEM block, the public key as a PEM "PUBLIC KEY".
func GenerateKeyPair(password []byte) (privPEM, pubPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode private key: %w", err)
	}
	sealed, err := encrypted.Encrypt(der, password)
	if err != nil {
		return nil, nil, fmt.Errorf("encrypt private key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, nil, fmt.Errorf("encode public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: sigstoreKeyType, Bytes: sealed}),
		pem.EncodeToMemory(&pem.Block{Type: publicKeyType, Bytes: pub}), nil
}

// WriteKeyPair generates a key pair and writes the private key to privPath (mode 0600)
// and the public key to pubPath, each durably; it replaces neither file if one exists.
func WriteKeyPair(privPath, pubPath string, password []byte) error {
	for _, p := range []string{privPath, pubPath} {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("%s already exists: remove it or write the key pair elsewhere (kiln will not replace a key)", p)
		}
	}
	priv, pub, err := GenerateKeyPair(password)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(privPath, priv, atomicfile.Options{Perm: 0o600, NoReplace: true}); err != nil {
		return fmt.Errorf("private key: %w", err)
	}
	if err := atomicfile.Write(pubPath, pub, atomicfile.Options{Perm: 0o644, NoReplace: true}); err != nil {
		// A private key without its public half is useless and would block the next try.
		_ = os.Remove(privPath)
		return fmt.Errorf("public key: %w", err)
	}
	return nil
}

// ParsePrivateKey decrypts a cosign private key (either PEM type) with password; it must
// be an ECDSA key, which is what cosign generates.
func ParsePrivateKey(pemBytes, password []byte) (*ecdsa.PrivateKey, error) {
	b, _ := pem.Decode(pemBytes)
	if b == nil {
		return nil, errors.New("not a PEM file: expected a cosign private key (`kiln generate-key` or `cosign generate-key-pair` writes one)")
	}
	if b.Type != sigstoreKeyType && b.Type != cosignKeyType {
		return nil, fmt.Errorf("PEM block %q is not a cosign private key (want %q)", b.Type, sigstoreKeyType)
	}
	der, err := encrypted.Decrypt(b.Bytes, password)
	if err != nil {
		// The envelope authenticates its plaintext: a failed open means the password is wrong.
		if strings.Contains(err.Error(), "decryption failed") {
			return nil, fmt.Errorf("%w: check COSIGN_PASSWORD", ErrWrongPassword)
		}
		return nil, fmt.Errorf("decrypt private key: %w", err)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("private key is %T: kiln signs with ECDSA keys only", k)
	}
	return ec, nil
}

// ParsePublicKey reads a PEM "PUBLIC KEY" (PKIX) holding an ECDSA key, as cosign.pub.
func ParsePublicKey(pemBytes []byte) (*ecdsa.PublicKey, error) {
	b, _ := pem.Decode(pemBytes)
	if b == nil {
		return nil, errors.New("not a PEM file: expected a public key such as cosign.pub")
	}
	if b.Type != publicKeyType {
		return nil, fmt.Errorf("PEM block %q is not a public key (want %q; give the .pub file, not the private key)", b.Type, publicKeyType)
	}
	k, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse public key: %w", err)
	}
	ec, ok := k.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("public key is %T: kiln verifies ECDSA keys only", k)
	}
	return ec, nil
}

// ReadKeyFile reads a key file after checking it is a regular file of sane size.
func ReadKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	if !st.Mode().IsRegular() || st.Size() > maxKeyFile {
		return nil, fmt.Errorf("read key %s: not a regular file under %d bytes", path, maxKeyFile)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("read key %s: %w", path, err)
	}
	return b, nil
}
