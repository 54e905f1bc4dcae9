package testenv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regentkv/regent/kv"
)

// OpenTLS opens a store on addr (host:port) with tlsCfg, the backend's
// credentials and whatever else the driver needs.
type OpenTLS func(ctx context.Context, addr string, tlsCfg *tls.Config) (kv.Store, error)

// CheckClientCertRotation checks that a running Store picks up a rotated
// client certificate without a restart, as a deployment rotates one
// before it expires: the Store's tls.Config hands out the current
// certificate from GetClientCertificate, first one that expires a few
// seconds from now, then its successor. Once the first has expired and a
// proxy in front of target has dropped every connection, the Store must
// reconnect with the successor and serve. A control Store with the expired
// certificate fixed in its config must be refused, which proves the
// server checks expiry (and that this check can fail).
func CheckClientCertRotation(t *testing.T, pki *PKI, target string, open OpenTLS) {
	t.Helper()
	// Long enough to open the Store and write once under -race on a
	// loaded machine (x509 keeps whole seconds, so it is 5 to 6 s).
	soon := time.Now().Add(6 * time.Second)
	first := pki.IssueClient(t, "client", soon)
	leaf, err := x509.ParseCertificate(first.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	var current atomic.Pointer[tls.Certificate]
	current.Store(&first)
	rotating := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pki.RootCAs(),
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return current.Load(), nil }}

	px := NewProxy(t, target)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	s, err := open(ctx, px.Addr(), rotating)
	if err != nil {
		t.Fatalf("open with the first certificate: %v", err)
	}
	defer func() { _ = s.Close() }()
	if err := s.Put(ctx, "rotation/k", []byte("first"), nil); err != nil {
		t.Fatalf("Put with the first certificate: %v", err)
	}

	next := pki.IssueClient(t, "client", time.Now().Add(time.Hour))
	current.Store(&next)
	// Wait out the first certificate (x509 counts whole seconds).
	select {
	case <-time.After(time.Until(leaf.NotAfter) + time.Second):
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	px.SwitchTo(target) // drop every connection: the Store must handshake again

	for {
		err := s.Put(ctx, "rotation/k", []byte("next"), nil)
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the Store never served again after the rotation: %v", err)
		case <-time.After(100 * time.Millisecond): // the driver's own reconnect backoff runs meanwhile
		}
	}
	p, err := s.Get(ctx, "rotation/k", nil)
	if err != nil || string(p.Value) != "next" {
		t.Fatalf("Get after the rotation: %v, %v; want next", p, err)
	}

	// The control: the expired certificate alone is refused.
	fixed := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pki.RootCAs(), Certificates: []tls.Certificate{first}}
	cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
	defer ccancel()
	c, err := open(cctx, px.Addr(), fixed)
	if err == nil {
		_ = c.Close()
		t.Fatal("a Store with the expired certificate was let in: the server does not check expiry, so this test proves nothing")
	}
	if !errors.Is(err, kv.ErrNotReachable) || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("the expired certificate alone: %v; want kv.ErrNotReachable naming the certificate", err)
	}
	t.Logf("the expired certificate alone: %v", err)
}
