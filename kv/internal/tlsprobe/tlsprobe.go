// Package tlsprobe says what a TLS handshake with a server meets, for the
// connect errors of the drivers: their clients (gRPC, HTTP/2) often report
// a refused certificate only as a broken pipe or a timeout.
package tlsprobe

import (
	"crypto/tls"
	"errors"
	"net"
	"time"
)

// Timeout bounds each step of Problem.
const Timeout = 500 * time.Millisecond

// Problem returns what a TLS handshake with host ("host:port") meets, ""
// when it goes through: an untrusted or mismatched server certificate, or
// a server that refuses the client's certificate (with TLS 1.3 that alert
// comes after the handshake, on the first read). A nil cfg is a default
// client configuration.
func Problem(host string, cfg *tls.Config) string {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg != nil {
		c = cfg.Clone()
	}
	if c.ServerName == "" {
		if h, _, err := net.SplitHostPort(host); err == nil {
			c.ServerName = h
		}
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: Timeout}, "tcp", host, c)
	if err != nil {
		return "TLS handshake failed: " + err.Error()
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetReadDeadline(time.Now().Add(Timeout))
	var b [1]byte
	if _, err := conn.Read(b[:]); err != nil {
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return "TLS refused after the handshake: " + err.Error()
		}
	}
	return ""
}
