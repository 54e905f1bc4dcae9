package embedded

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// ErrClosed is returned by Restart after Close.
var ErrClosed = errors.New("embedded: server closed")

// startAttempts bounds how often Start retries when a freshly picked port was
// taken before the server could bind it.
const startAttempts = 5

// Server is a running (or stopped) in-process etcd server.
type Server struct {
	opts    options
	tempDir bool // dataDir was created by Start and is removed by Close

	mu         sync.Mutex
	etcd       *embed.Etcd // nil while stopped
	clientPort int
	peerPort   int
	closed     bool
}

// Start starts a single-member etcd server on free loopback ports and
// returns once it serves clients. On error (including ctx ending first)
// nothing is left running.
func Start(ctx context.Context, opts ...Option) (*Server, error) {
	s := &Server{opts: options{logger: zap.NewNop()}}
	for _, o := range opts {
		o.apply(&s.opts)
	}
	if s.opts.dataDir == "" {
		dir, err := os.MkdirTemp("", "regent-etcd-")
		if err != nil {
			return nil, fmt.Errorf("embedded: data dir: %w", err)
		}
		s.opts.dataDir = dir
		s.tempDir = true
	}
	var err error
	for range startAttempts {
		if s.clientPort, err = freePort(); err != nil {
			break
		}
		if s.peerPort, err = freePort(); err != nil {
			break
		}
		err = s.start(ctx)
		if err == nil || !isAddrInUse(err) {
			break
		}
	}
	if err != nil {
		s.removeTempDir()
		return nil, err
	}
	return s, nil
}

// Endpoints returns the client URLs, for clientv3.Config.Endpoints. They stay
// the same across Stop and Restart.
func (s *Server) Endpoints() []string {
	u := s.clientURL()
	return []string{u.String()}
}

// DataDir returns the directory holding the server's data.
func (s *Server) DataDir() string { return s.opts.dataDir }

// Stop stops the server but keeps its data directory and ports, so that
// Restart brings the same server back at the same endpoints. Stopping a
// stopped server does nothing. Like a real etcd shutdown it lets open
// client streams (watches) finish first, for up to etcd's request timeout
// (7 s with the default election timeout): expect Stop to take that long
// while clients watch.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopLocked()
}

// Restart starts a stopped server again, on the same data and ports; a
// running server is stopped first. Clients that were connected reconnect by
// themselves.
func (s *Server) Restart(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.stopLocked()
	return s.startLocked(ctx)
}

// Close stops the server, waits for it, and removes the data directory if
// Start created it. It is idempotent and always returns nil; the error
// result is there for io.Closer.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.stopLocked()
	s.removeTempDir()
	return nil
}

func (s *Server) start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.startLocked(ctx)
}

func (s *Server) startLocked(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	cfg := embed.NewConfig()
	cfg.Name = "regent"
	cfg.Dir = s.opts.dataDir
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(s.opts.logger)
	curl, purl := s.clientURL(), s.peerURL()
	cfg.ListenClientUrls = []url.URL{curl}
	cfg.AdvertiseClientUrls = []url.URL{curl}
	cfg.ListenPeerUrls = []url.URL{purl}
	cfg.AdvertisePeerUrls = []url.URL{purl}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	// No metrics listener, no pprof, no v2 gateway: nothing but the v3 API.
	cfg.ListenMetricsUrls = nil
	cfg.UnsafeNoFsync = s.opts.noFsync
	if s.opts.bcryptCost > 0 {
		cfg.BcryptCost = s.opts.bcryptCost
	}
	if c := s.opts.tls; c != nil {
		cfg.ClientTLSInfo = transport.TLSInfo{CertFile: c.CertFile, KeyFile: c.KeyFile,
			TrustedCAFile: c.TrustedCAFile, ClientCertAuth: c.ClientCertAuth}
	}
	if s.opts.progressInterval > 0 {
		cfg.WatchProgressNotifyInterval = s.opts.progressInterval
	}

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return fmt.Errorf("embedded: start etcd: %w", err)
	}
	select {
	case <-e.Server.ReadyNotify():
		s.etcd = e
		return nil
	case err := <-e.Err():
		e.Close()
		return fmt.Errorf("embedded: etcd failed while starting: %w", err)
	case <-ctx.Done():
		e.Close()
		return ctx.Err()
	}
}

func (s *Server) stopLocked() {
	if s.etcd == nil {
		return
	}
	// Close waits for etcd's own serving goroutines and closes its listeners.
	s.etcd.Close()
	s.etcd = nil
}

func (s *Server) removeTempDir() {
	if s.tempDir {
		_ = os.RemoveAll(s.opts.dataDir)
	}
}

func (s *Server) clientURL() url.URL {
	scheme := "http"
	if s.opts.tls != nil {
		scheme = "https"
	}
	return url.URL{Scheme: scheme, Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(s.clientPort))}
}

func (s *Server) peerURL() url.URL {
	return url.URL{Scheme: "http", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(s.peerPort))}
}

// freePort asks the kernel for a free port. etcd records its peer URL in the
// data directory, so it needs a real port number up front (port 0 would be
// stored as such); the small race this leaves is covered by Start's retries.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("embedded: no free port: %w", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func isAddrInUse(err error) bool {
	var opErr *net.OpError
	return errors.As(err, &opErr) && opErr.Op == "listen"
}
