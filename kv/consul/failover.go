package consul

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"
)

// failover is an http.RoundTripper that sends each request to the current
// agent and moves on to the next address when no connection to it can be
// opened. It only retries dial failures: once a request may have reached a
// server it is never resent, so a non-idempotent write cannot be applied
// twice. The address that worked becomes the current one for everyone.
type failover struct {
	base  *http.Transport
	hosts []string
	cur   atomic.Uint32
	log   *zap.Logger
	// cut, once set, fails every request as if the network were gone: how
	// tests kill a Store without a goodbye.
	cut atomic.Bool
	// closing ends when the Store closes: requests still in flight then
	// are cancelled, so that no call waits on past Close.
	closing context.Context
}

var errCut = errors.New("consul: connection cut")

// outlivesClose marks ctx as that of a request Close must not cancel: the
// releases and session destroys that Close itself makes, or waits for,
// each bounded by Config.CloseTimeout.
func outlivesClose(ctx context.Context) context.Context {
	return context.WithValue(ctx, outlivesCloseKey{}, true)
}

type outlivesCloseKey struct{}

func (f *failover) RoundTrip(req *http.Request) (*http.Response, error) {
	if f.closing == nil || req.Context().Value(outlivesCloseKey{}) != nil {
		return f.roundTrip(req)
	}
	ctx, cancel := context.WithCancel(req.Context())
	stop := context.AfterFunc(f.closing, cancel)
	resp, err := f.roundTrip(req.WithContext(ctx))
	if err != nil {
		stop()
		cancel()
		return nil, err
	}
	// The body is read after RoundTrip returns: the request's ctx lives
	// until it is closed.
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, done: func() { stop(); cancel() }}
	return resp, nil
}

// cancelOnClose calls done once its body is closed.
type cancelOnClose struct {
	io.ReadCloser
	once sync.Once
	done func()
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.once.Do(c.done)
	return err
}

func (f *failover) roundTrip(req *http.Request) (*http.Response, error) {
	if f.cut.Load() {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errCut}
	}
	n := uint32(len(f.hosts))
	start := f.cur.Load()
	var lastErr error
	for i := uint32(0); i < n; i++ {
		idx := (start + i) % n
		r := req
		if idx != 0 || i > 0 {
			// consul/api addresses every request to hosts[0]; only another
			// host, or a second attempt, needs a copy of the request.
			r = req.Clone(req.Context())
			r.URL.Host = f.hosts[idx]
			r.Host = f.hosts[idx]
		}
		if i > 0 && req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				return nil, lastErr
			}
			body, err := req.GetBody()
			if err != nil {
				return nil, lastErr
			}
			r.Body = body
		}
		resp, err := f.base.RoundTrip(r)
		if err == nil {
			recordStatus(req, resp)
			if idx != start && f.cur.CompareAndSwap(start, idx) {
				f.log.Warn("consul: failed over to another agent", zap.String("address", f.hosts[idx]))
			}
			return resp, nil
		}
		lastErr = err
		if !isDialError(err) || req.Context().Err() != nil {
			return nil, err
		}
	}
	return nil, lastErr
}

// isDialError reports whether err happened while opening a connection, so
// that nothing of the request was sent.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
