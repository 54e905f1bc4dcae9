package backend

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
)

// PasswordEnv and the Consul client's own CONSUL_HTTP_TOKEN are where the
// secrets come from when no -password-file or -token-file is given. A
// secret never goes on the command line: every user of the machine can
// read a process's arguments (ps).
const PasswordEnv = "REGENT_PASSWORD"

// credentials are the secrets the flags point at, read once by Open.
type credentials struct {
	tls      *tls.Config // nil: plain connections
	password string
	token    string
}

// readCredentials loads what the TLS and credential flags name. Every
// problem is ErrInvalidFlags, naming the flag and the file but never a
// file's content.
func (f *Flags) readCredentials() (credentials, error) {
	var c credentials
	if (f.TLSCert == "") != (f.TLSKey == "") {
		return c, fmt.Errorf("%w: -tls-cert and -tls-key go together", ErrInvalidFlags)
	}
	if f.TLSCA != "" || f.TLSCert != "" {
		c.tls = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: f.TLSServerName}
		if f.TLSCA != "" {
			pem, err := os.ReadFile(f.TLSCA)
			if err != nil {
				return c, fmt.Errorf("%w: -tls-ca: %w", ErrInvalidFlags, err)
			}
			c.tls.RootCAs = x509.NewCertPool()
			if !c.tls.RootCAs.AppendCertsFromPEM(pem) {
				return c, fmt.Errorf("%w: -tls-ca %s holds no PEM certificate", ErrInvalidFlags, f.TLSCA)
			}
		}
		if f.TLSCert != "" {
			files := &certFiles{cert: f.TLSCert, key: f.TLSKey}
			if _, err := files.get(nil); err != nil {
				return c, fmt.Errorf("%w: -tls-cert/-tls-key: %w", ErrInvalidFlags, err)
			}
			c.tls.GetClientCertificate = files.get
		}
	}
	var err error
	if f.User != "" || f.PasswordFile != "" {
		// $REGENT_PASSWORD counts only with -user: a password alone
		// means nothing to any backend.
		if c.password, err = secret("-password-file", f.PasswordFile, PasswordEnv); err != nil {
			return c, err
		}
	}
	if c.token, err = secret("-token-file", f.TokenFile, ""); err != nil {
		return c, err
	}
	switch {
	case f.User != "" && c.password == "":
		return c, fmt.Errorf("%w: -user needs a password: -password-file, or $%s", ErrInvalidFlags, PasswordEnv)
	case f.User == "" && f.PasswordFile != "":
		return c, fmt.Errorf("%w: -password-file needs -user", ErrInvalidFlags)
	case f.User != "" && f.Backend != Etcd && f.Backend != ZooKeeper:
		return c, fmt.Errorf("%w: -user is for etcd (a user) and zookeeper (a digest identity); consul takes -token-file", ErrInvalidFlags)
	case f.TokenFile != "" && f.Backend != Consul:
		return c, fmt.Errorf("%w: -token-file is for consul", ErrInvalidFlags)
	case c.tls != nil && f.Backend == Memory:
		return c, fmt.Errorf("%w: -backend memory is in-process and takes no -tls flags", ErrInvalidFlags)
	}
	return c, nil
}

// secret reads the file flag names, else the environment variable env.
func secret(flag, file, env string) (string, error) {
	if file == "" {
		if env == "" {
			return "", nil
		}
		return os.Getenv(env), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %w", ErrInvalidFlags, flag, err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%w: %s %s is empty", ErrInvalidFlags, flag, file)
	}
	return s, nil
}

// certFiles hands out the client certificate in a pair of PEM files,
// reading them again at every TLS handshake (a few KiB, and handshakes
// are rare) and parsing them when their content changed: a certificate
// rotated on disk (cert-manager, Vault agent) is used from the next
// handshake on, without a restart. A pair caught half-written keeps the
// last good one until the next handshake looks again.
type certFiles struct {
	cert, key string

	mu      sync.Mutex
	certPEM []byte // the files' content, as last parsed
	keyPEM  []byte
	current *tls.Certificate
}

func (c *certFiles) get(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	certPEM, cerr := os.ReadFile(c.cert)
	keyPEM, kerr := os.ReadFile(c.key)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := errors.Join(cerr, kerr); err != nil {
		if c.current == nil {
			return nil, err
		}
		return c.current, nil // a file being replaced: the last good pair
	}
	if c.current != nil && bytes.Equal(certPEM, c.certPEM) && bytes.Equal(keyPEM, c.keyPEM) {
		return c.current, nil
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	switch {
	case err == nil:
		c.current, c.certPEM, c.keyPEM = &pair, certPEM, keyPEM
	case c.current == nil:
		return nil, err
	}
	return c.current, nil
}
