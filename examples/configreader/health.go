package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// healthServer serves /readyz and /healthz on a loopback port, as a real
// service would for its probes. A stale cache is a readiness matter: the
// replica should get no traffic that needs fresh config, but it must not
// be restarted, which a failing liveness probe (/healthz) would do to
// every replica at once during a store outage (docs/operations.md).
type healthServer struct {
	srv  *http.Server
	url  string     // http://host:port
	done chan error // Serve's result
}

// startHealth serves check at /readyz: 200 when it returns nil, 503 with
// its error otherwise; /healthz (liveness) answers 200 while the process
// serves.
func startHealth(check func() error) (*healthServer, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := check(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	h := &healthServer{
		srv:  &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second},
		url:  "http://" + l.Addr().String(),
		done: make(chan error, 1),
	}
	go func() { h.done <- h.srv.Serve(l) }()
	return h, nil
}

// get asks path (/readyz, /healthz) as a probe would, on a fresh
// connection each time.
func (h *healthServer) get(ctx context.Context, path string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.url+path, nil)
	if err != nil {
		return 0, "", err
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", err
	}
	return resp.StatusCode, strings.TrimSpace(string(body)), nil
}

// close shuts the server down and waits for Serve to return.
func (h *healthServer) close(ctx context.Context) error {
	err := h.srv.Shutdown(ctx)
	if serr := <-h.done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("health server: %w", serr))
	}
	return err
}
