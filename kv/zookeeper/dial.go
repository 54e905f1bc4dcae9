package zookeeper

import (
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"
)

// handshakeDialer wraps the dialer so that a connection's handshake cannot
// hang for long, and so that the Store learns the session timeout the
// server granted.
//
// go-zookeeper waits ten times its receive timeout (6.7x the session
// timeout) for the server's answer to the connect request, and a server
// that accepted the TCP connection while starting up may never answer it:
// the client then sits on a dead connection for minutes instead of trying
// again, until its session has expired. regent gives a handshake a third
// of SessionTimeout divided by the number of servers (at least a second),
// so that a pass over every server leaves two thirds of the session
// timeout to reconnect in (the Java client gives each server the whole
// SessionTimeout/n). Once the session is up, go-zookeeper's own deadlines
// apply unchanged.
//
// The server clamps the timeout a client asks for to its own
// [minSessionTimeout, maxSessionTimeout], and go-zookeeper keeps what it
// granted to itself. The Store needs it: locks and KeepAlive keys live as
// long as the session, so the granted timeout, not the one asked for, is
// what their TTL and RenewDeadline are checked against. It is the second
// field of the connect response, the first message the server sends on a
// connection (length, protocol version, timeout, session id, password).
func handshakeDialer(d zk.Dialer, limit time.Duration, up *atomic.Bool, granted *atomic.Int64) zk.Dialer {
	return func(network, addr string, timeout time.Duration) (net.Conn, error) {
		c, err := d(network, addr, timeout)
		if err != nil {
			return nil, err
		}
		return &handshakeConn{Conn: c, limit: limit, up: up, granted: granted}, nil
	}
}

type handshakeConn struct {
	net.Conn
	limit   time.Duration
	up      *atomic.Bool
	granted *atomic.Int64 // milliseconds

	// The first connectHeader bytes read, until the timeout is parsed.
	// Only go-zookeeper's receive goroutine reads.
	head [connectHeader]byte
	seen int
}

// connectHeader is how much of the connect response holds the timeout:
// the packet length, the protocol version and the timeout, 4 bytes each.
const connectHeader = 12

func (c *handshakeConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if c.seen < connectHeader && n > 0 {
		k := copy(c.head[c.seen:], b[:n])
		c.seen += k
		if c.seen == connectHeader {
			// Zero when the server refused the session (expired).
			if ms := int32(binary.BigEndian.Uint32(c.head[8:12])); ms > 0 {
				c.granted.Store(int64(ms))
			}
		}
	}
	return n, err
}

func (c *handshakeConn) clamp(t time.Time) time.Time {
	if t.IsZero() || c.up.Load() {
		return t
	}
	if lim := time.Now().Add(c.limit); t.After(lim) {
		return lim
	}
	return t
}

func (c *handshakeConn) SetDeadline(t time.Time) error { return c.Conn.SetDeadline(c.clamp(t)) }

func (c *handshakeConn) SetReadDeadline(t time.Time) error {
	return c.Conn.SetReadDeadline(c.clamp(t))
}

func (c *handshakeConn) SetWriteDeadline(t time.Time) error {
	return c.Conn.SetWriteDeadline(c.clamp(t))
}

// dialLog records what the connection attempts met, so that New's error
// can say it: nothing listening, or a server that accepted connections
// but gave no session (not ZooKeeper, still starting, or a member without
// a quorum).
type dialLog struct {
	mu        sync.Mutex
	lastErr   error
	lastAddr  string
	connected int // dials that succeeded
}

func (s *Store) recordDials(d zk.Dialer) zk.Dialer {
	return func(network, addr string, timeout time.Duration) (net.Conn, error) {
		c, err := d(network, addr, timeout)
		s.dials.mu.Lock()
		if err != nil {
			s.dials.lastErr, s.dials.lastAddr = err, addr
		} else {
			s.dials.connected++
		}
		s.dials.mu.Unlock()
		return c, err
	}
}

func (s *Store) dialReport() string {
	s.dials.mu.Lock()
	defer s.dials.mu.Unlock()
	switch {
	case s.dials.connected > 0:
		return fmt.Sprintf("%d connections were accepted but none gave a session (not ZooKeeper on that port, a server still starting, or a member without a quorum?)", s.dials.connected)
	case s.dials.lastErr != nil:
		return fmt.Sprintf("last attempt: %v", s.dials.lastErr)
	}
	return "no connection attempt finished"
}

// tlsDialer runs TLS over the connections of d, the handshake bounded by
// the dial timeout.
func tlsDialer(d zk.Dialer, cfg *tls.Config) zk.Dialer {
	return func(network, addr string, timeout time.Duration) (net.Conn, error) {
		raw, err := d(network, addr, timeout)
		if err != nil {
			return nil, err
		}
		c := cfg.Clone()
		if c.ServerName == "" {
			if host, _, err := net.SplitHostPort(addr); err == nil {
				c.ServerName = host
			}
		}
		conn := tls.Client(raw, c)
		if timeout > 0 {
			_ = conn.SetDeadline(time.Now().Add(timeout))
		}
		if err := conn.Handshake(); err != nil {
			_ = raw.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		_ = conn.SetDeadline(time.Time{})
		return conn, nil
	}
}
