package controller

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

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
