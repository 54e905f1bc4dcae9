package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// PKI is a certificate authority made for one test, with a server
// certificate for 127.0.0.1 and a client certificate, all short-lived, as
// PEM files in a temporary directory.
type PKI struct {
	CAFile                    string
	ServerCertFile, ServerKey string
	ClientCertFile, ClientKey string

	pool  *x509.CertPool
	ca    *x509.Certificate
	caKey *ecdsa.PrivateKey
	dir   string

	serial atomic.Int64 // certificates IssueClient signed
}

// NewPKI makes a CA, a server certificate (127.0.0.1, localhost) and a
// client certificate (CN client), valid for an hour.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	dir := t.TempDir()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "regent test CA"},
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatalf("testenv: CA certificate: %v", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	p := &PKI{CAFile: filepath.Join(dir, "ca.pem"), pool: x509.NewCertPool(), ca: ca, caKey: caKey, dir: dir}
	p.pool.AddCert(ca)
	writePEM(t, p.CAFile, "CERTIFICATE", caDER)
	p.ServerCertFile, p.ServerKey = p.issue(t, leaf{serial: 2, cn: "127.0.0.1", usage: x509.ExtKeyUsageServerAuth,
		ips: []net.IP{net.IPv4(127, 0, 0, 1)}, names: []string{"localhost"}, notAfter: time.Now().Add(time.Hour)}, "server")
	p.ClientCertFile, p.ClientKey = p.issue(t, leaf{serial: 3, cn: "client", usage: x509.ExtKeyUsageClientAuth,
		notAfter: time.Now().Add(time.Hour)}, "client")
	return p
}

// leaf describes a certificate the CA signs.
type leaf struct {
	serial   int64
	cn       string
	usage    x509.ExtKeyUsage
	ips      []net.IP
	names    []string
	notAfter time.Time
}

// issue signs l and writes it and its key as PEM files named after base.
func (p *PKI) issue(t testing.TB, l leaf, base string) (certFile, keyFile string) {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(l.serial),
		Subject:      pkix.Name{CommonName: l.cn},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     l.notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{l.usage},
		IPAddresses:  l.ips,
		DNSNames:     l.names,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatalf("testenv: %s certificate: %v", l.cn, err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(p.dir, base+".pem"), filepath.Join(p.dir, base+"-key.pem")
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "EC PRIVATE KEY", kder)
	return certFile, keyFile
}

// IssueClient signs a new client certificate (CN cn) valid until notAfter,
// for rotation tests: a certificate about to expire, then its successor.
func (p *PKI) IssueClient(t testing.TB, cn string, notAfter time.Time) tls.Certificate {
	t.Helper()
	n := p.serial.Add(1)
	certFile, keyFile := p.issue(t, leaf{serial: 100 + n, cn: cn, usage: x509.ExtKeyUsageClientAuth, notAfter: notAfter},
		fmt.Sprintf("client-%d", n))
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// RootCAs is a pool holding the PKI's CA.
func (p *PKI) RootCAs() *x509.CertPool { return p.pool }

// ClientTLS is a client configuration that trusts the CA and presents the
// client certificate.
func (p *PKI) ClientTLS(t testing.TB) *tls.Config {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(p.ClientCertFile, p.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{RootCAs: p.pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writePEM(t testing.TB, path, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// serverKeyStore writes the server's key (PKCS #8) and certificate into
// one PEM file, the keystore form ZooKeeper reads, and returns its path.
func (p *PKI) serverKeyStore(dir string) (string, error) {
	cert, err := tls.LoadX509KeyPair(p.ServerCertFile, p.ServerKey)
	if err != nil {
		return "", err
	}
	der, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return "", err
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	for _, c := range cert.Certificate {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c})...)
	}
	path := filepath.Join(dir, "server-keystore.pem")
	return path, os.WriteFile(path, out, 0o600)
}

// clientTLSConfig is ClientTLS without a testing.TB, for testenv itself.
func (p *PKI) clientTLSConfig() *tls.Config {
	cert, err := tls.LoadX509KeyPair(p.ClientCertFile, p.ClientKey)
	if err != nil {
		return &tls.Config{RootCAs: p.pool, MinVersion: tls.VersionTLS12}
	}
	return &tls.Config{RootCAs: p.pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
}
