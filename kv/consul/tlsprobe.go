package consul

import (
	"crypto/tls"
	"errors"
	"net"
	"time"
)

// tlsProbeTimeout bounds each step of tlsProblem.
const tlsProbeTimeout = 500 * time.Millisecond

// tlsProblem says what a TLS handshake with host meets, for New's error
// when its first request failed: HTTP/2 often reports only a broken pipe
// or a connection it could not establish. It returns "" when the handshake
// goes through. With TLS 1.3 a server that refuses the client's
// certificate says so after the handshake, on the first read.
func tlsProblem(host string, cfg *tls.Config) string {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg != nil {
		c = cfg.Clone()
	}
	if c.ServerName == "" {
		if h, _, err := net.SplitHostPort(host); err == nil {
			c.ServerName = h
		}
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: tlsProbeTimeout}, "tcp", host, c)
	if err != nil {
		return "TLS handshake failed: " + err.Error()
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetReadDeadline(time.Now().Add(tlsProbeTimeout))
	var b [1]byte
	if _, err := conn.Read(b[:]); err != nil {
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return "TLS refused after the handshake: " + err.Error()
		}
	}
	return ""
}
