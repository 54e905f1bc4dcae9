package testenv

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestConsulStartsAndStops(t *testing.T) {
	srv := Consul(t, ConsulOptions{})
	resp, err := http.Get("http://" + srv.Addr + "/v1/status/leader")
	if err != nil {
		t.Fatalf("GET leader: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Trim(strings.TrimSpace(string(b)), `"`) == "" {
		t.Fatalf("got no leader %q", b)
	}
	srv.Stop()
	srv.Stop() // idempotent
	if resp, err := http.Get("http://" + srv.Addr + "/v1/status/leader"); err == nil {
		_ = resp.Body.Close()
		t.Fatalf("agent still answers after Stop")
	}
}

func TestConsulACL(t *testing.T) {
	srv := Consul(t, ConsulOptions{ACLToken: "root-token"})
	for _, tc := range []struct {
		name, token string
		want        int
	}{
		{"anonymous is denied", "", http.StatusForbidden},
		{"management token is allowed", "root-token", http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, "http://"+srv.Addr+"/v1/kv/x", nil)
			if tc.token != "" {
				req.Header.Set("X-Consul-Token", tc.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("got status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}
