package zookeeper

import (
	"net"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"
)

// handshakeDialer wraps the dialer so that a connection's handshake cannot
// hang for long. go-zookeeper waits ten times its receive timeout (6.7x
// the session timeout) for the server's answer to the connect request,
// and a server that accepted the TCP connection while starting up may
// never answer it: the client then sits on a dead connection for minutes
// instead of trying again, until its session has expired. regent gives a
// handshake a third of SessionTimeout divided by the number of servers (at
// least a second), so that a pass over every server leaves two thirds of
// the session timeout to reconnect in (the Java client gives each server
// the whole SessionTimeout/n). Once the session is up, go-zookeeper's own
// deadlines apply unchanged.
func handshakeDialer(d zk.Dialer, limit time.Duration, up *atomic.Bool) zk.Dialer {
	return func(network, addr string, timeout time.Duration) (net.Conn, error) {
		c, err := d(network, addr, timeout)
		if err != nil {
			return nil, err
		}
		return &handshakeConn{Conn: c, limit: limit, up: up}, nil
	}
}

type handshakeConn struct {
	net.Conn
	limit time.Duration
	up    *atomic.Bool
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
