package controller

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// server is the Manager's HTTP server for /metrics, /healthz and /readyz.
type server struct {
	srv    *http.Server
	served chan struct{} // closed when Serve has returned
}

// startServer listens on ManagerConfig.HealthAddr and serves until
// shutdown; a failure to serve stops the Manager through fail.
func (m *Manager) startServer(fail func(error)) (*server, error) {
	ln, err := net.Listen("tcp", m.cfg.HealthAddr)
	if err != nil {
		return nil, fmt.Errorf("controller: health server: %w", err)
	}
	s := &server{srv: &http.Server{Handler: m.handler(), ReadHeaderTimeout: 10 * time.Second}, served: make(chan struct{})}
	m.mu.Lock()
	m.addr = ln.Addr()
	m.mu.Unlock()
	go func() {
		defer close(s.served)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fail(fmt.Errorf("controller: health server: %w", err))
		}
	}()
	m.log.Info("serving /metrics, /healthz, /readyz", zap.Stringer("addr", ln.Addr()))
	return s, nil
}

// shutdown stops the server, waiting up to timeout for requests in flight,
// and returns once Serve has.
func (s *server) shutdown(timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		_ = s.srv.Close() // requests still in flight: cut them
	}
	<-s.served
}

// handler serves /metrics, /healthz and /readyz.
//
// The probes answer like Kubernetes' own: 200 "ok" when every check passes,
// 503 listing each check as "[+]name ok" or "[-]name failed: reason" when one
// fails; ?verbose lists them on success too.
func (m *Manager) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorLog: zapPrintln{m}}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { m.serveChecks(w, r, "healthz") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) { m.serveChecks(w, r, "readyz") })
	return mux
}

func (m *Manager) serveChecks(w http.ResponseWriter, r *http.Request, kind string) {
	m.mu.Lock()
	checks := append([]namedCheck(nil), m.checks[kind]...)
	m.mu.Unlock()
	var b strings.Builder
	failed := false
	for _, c := range checks {
		if err := c.check(); err != nil {
			failed = true
			fmt.Fprintf(&b, "[-]%s failed: %v\n", c.name, err)
		} else {
			fmt.Fprintf(&b, "[+]%s ok\n", c.name)
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	switch {
	case failed:
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(&b, "%s check failed\n", kind)
		_, _ = w.Write([]byte(b.String()))
	case r.URL.Query().Has("verbose"):
		fmt.Fprintf(&b, "%s check passed\n", kind)
		_, _ = w.Write([]byte(b.String()))
	default:
		_, _ = w.Write([]byte("ok"))
	}
}

// zapPrintln routes promhttp's errors to the Manager's logger.
type zapPrintln struct{ m *Manager }

func (z zapPrintln) Println(v ...any) { z.m.log.Error("serving /metrics: " + fmt.Sprint(v...)) }
