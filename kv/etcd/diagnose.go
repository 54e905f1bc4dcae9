package etcd

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/regentkv/regent/kv/internal/tlsprobe"
)

// checkEndpoint refuses an endpoint the etcd client could only fail on
// later with a bare timeout: a URL with a scheme other than http, https,
// unix or unixs (a typo such as "htp://"), or no host.
func checkEndpoint(ep string) error {
	if !strings.Contains(ep, "://") {
		if _, _, err := net.SplitHostPort(ep); err != nil {
			return fmt.Errorf("endpoint %q is neither a URL (http://host:port) nor host:port: %w", ep, err)
		}
		return nil
	}
	u, err := url.Parse(ep)
	if err != nil {
		return fmt.Errorf("endpoint %q: %w", ep, err)
	}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return fmt.Errorf("endpoint %q has no host", ep)
		}
	case "unix", "unixs":
	default:
		return fmt.Errorf("endpoint %q has scheme %q; want http, https, unix or unixs", ep, u.Scheme)
	}
	return nil
}

// diagnoseDialTimeout bounds each probe of diagnose.
const diagnoseDialTimeout = 500 * time.Millisecond

// diagnose says, for each endpoint, what is at its address, for the error
// of a New whose first read got no answer: nothing listening (refused), no
// answer at all, or something that accepts TCP but did not answer etcd's
// gRPC (another service, or TLS on one side only).
func diagnose(endpoints []string, tlsCfg *tls.Config) string {
	var parts []string
	for _, ep := range endpoints {
		host := ep
		if u, err := url.Parse(ep); err == nil && u.Host != "" {
			host = u.Host
		}
		if strings.HasPrefix(ep, "https://") {
			if why := tlsProblem(host, tlsCfg); why != "" {
				parts = append(parts, ep+": "+why)
				continue
			}
		}
		if strings.HasPrefix(ep, "unix") {
			parts = append(parts, ep+": no answer on the socket")
			continue
		}
		c, err := net.DialTimeout("tcp", host, diagnoseDialTimeout)
		switch {
		case err == nil:
			_ = c.Close()
			parts = append(parts, ep+": accepts connections but did not answer as etcd (another service on that port, or TLS on one side only?)")
		case strings.Contains(err.Error(), "refused"):
			parts = append(parts, ep+": connection refused (nothing listening there)")
		default:
			parts = append(parts, fmt.Sprintf("%s: %v", ep, err))
		}
	}
	return strings.Join(parts, "; ")
}

// tlsProblem is tlsprobe.Problem, with what a nil Config.TLS means here.
func tlsProblem(host string, cfg *tls.Config) string {
	if cfg == nil {
		return "an https endpoint, but Config.TLS is nil (give it the CA that signed the server certificate, and a client certificate if the server asks for one)"
	}
	return tlsprobe.Problem(host, cfg)
}
