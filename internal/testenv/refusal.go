package testenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/regentkv/regent/kv"
)

// Refusal is one way a secured server must turn a Store away at New: bad
// credentials, a root outside the grant, a certificate it does not trust.
type Refusal struct {
	Name string
	// Open calls the driver's New with the refused settings.
	Open func(ctx context.Context) (kv.Store, error)
	// Want is the sentinel the error must match; Says a word it must hold.
	Want error
	Says string
	// Secret, if set, must not appear in the error.
	Secret string
}

// refusalBound is how long a refusal may take: the tests dial with a 2 s
// timeout, and a refused TLS handshake costs that much on etcd and
// ZooKeeper (their clients retry until it ends); slack for a loaded
// machine.
const refusalBound = 5 * time.Second

// CheckRefusals runs each refusal as a subtest: New must fail with the
// typed error, within refusalBound, saying what is wrong and not the
// secret. The caller checks afterwards, as the operator, that nothing was
// written.
func CheckRefusals(t *testing.T, refusals []Refusal) {
	t.Helper()
	for _, r := range refusals {
		t.Run(r.Name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			start := time.Now()
			s, err := r.Open(ctx)
			if err == nil {
				_ = s.Close()
				t.Fatal("New succeeded")
			}
			took := time.Since(start)
			if !errors.Is(err, r.Want) || !strings.Contains(err.Error(), r.Says) || took > refusalBound {
				t.Errorf("New: %v after %v; want %v within %v, saying %q", err, took, r.Want, refusalBound, r.Says)
			}
			if r.Secret != "" && strings.Contains(err.Error(), r.Secret) {
				t.Errorf("the error carries the secret: %v", err)
			}
			t.Logf("%s: %v", r.Name, err)
		})
	}
}

// SecretWatch collects what a Store could let a secret out through: its
// Config printed every way, its errors, its log lines (Logger, to give
// the driver). Check fails the test if any of it holds the secret.
type SecretWatch struct {
	// Logger records every entry, for the driver's Config.Logger.
	Logger *zap.Logger

	secret string
	logs   *observer.ObservedLogs
	said   []string
	failed []string // what went wrong while recording
}

// WatchSecret starts a SecretWatch for secret.
func WatchSecret(secret string) *SecretWatch {
	core, logs := observer.New(zap.DebugLevel)
	return &SecretWatch{Logger: zap.New(core), secret: secret, logs: logs}
}

// Config records cfg (a driver Config value) printed with every verb,
// itself and through a pointer, and as JSON, and returns the %+v form.
func (w *SecretWatch) Config(cfg, ptr any) string {
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q", "%d", "%x"} {
		w.said = append(w.said, fmt.Sprintf(f, cfg), fmt.Sprintf(f, ptr))
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		w.failed = append(w.failed, "json.Marshal of the Config: "+err.Error())
	}
	w.said = append(w.said, string(b))
	return fmt.Sprintf("%+v", cfg)
}

// Value records v (a Store) printed with %+v and %#v: its unexported
// fields are printed raw, without their types' Format methods.
func (w *SecretWatch) Value(v any) {
	w.said = append(w.said, fmt.Sprintf("%+v", v), fmt.Sprintf("%#v", v))
}

// Err records err, if any.
func (w *SecretWatch) Err(err error) {
	if err != nil {
		w.said = append(w.said, err.Error())
	}
}

// WaitForLog waits until the driver has logged something (a lost
// connection, a failed renewal), or ctx ends.
func (w *SecretWatch) WaitForLog(ctx context.Context) {
	for w.logs.Len() == 0 && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond): // polling the recorder: it has no notification
		}
	}
}

// Check fails t for every recorded string, and every log message and
// field, that holds the secret; and if nothing at all was logged, since
// the test meant to make the driver log.
func (w *SecretWatch) Check(t *testing.T) {
	t.Helper()
	for _, f := range w.failed {
		t.Error(f)
	}
	said := w.said
	entries := w.logs.All()
	for _, e := range entries {
		said = append(said, e.Message)
		for k, v := range e.ContextMap() {
			said = append(said, k+"="+fmt.Sprint(v))
		}
	}
	for _, line := range said {
		if strings.Contains(line, w.secret) {
			t.Errorf("the secret was printed: %s", line)
		}
	}
	if len(entries) == 0 {
		t.Error("the driver logged nothing: the test did not exercise its logging")
	}
}

// CheckCallsRefused makes every kind of call on s about key (a key under
// prefix) after its grant was taken away: each must be
// kv.ErrPermissionDenied, and none may wait (no retry loop hiding the
// refusal). The caller checks, as the operator, that nothing was written.
func CheckCallsRefused(t *testing.T, ctx context.Context, s kv.Store, prefix, key string) {
	t.Helper()
	consistent := &kv.ReadOptions{Consistent: true}
	calls := []struct {
		name string
		call func() error
	}{
		{"Get", func() error { _, err := s.Get(ctx, key, nil); return err }},
		{"Get Consistent", func() error { _, err := s.Get(ctx, key, consistent); return err }},
		{"Put", func() error { return s.Put(ctx, key, []byte("theirs"), nil) }},
		{"List", func() error { _, err := s.List(ctx, prefix, nil); return err }},
		{"List Consistent", func() error { _, err := s.List(ctx, prefix, consistent); return err }},
		{"Delete", func() error { return s.Delete(ctx, key) }},
		{"Lock", func() error {
			l, err := s.NewLock(ctx, prefix+"/lock", nil)
			if err != nil {
				return err
			}
			_, err = l.Lock(ctx)
			return err
		}},
	}
	start := time.Now()
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, kv.ErrPermissionDenied) {
			t.Errorf("%s after the grant was taken away: %v; want kv.ErrPermissionDenied", c.name, err)
		}
	}
	if d := time.Since(start); d > refusalBound {
		t.Errorf("the refused calls took %v; want each at once", d)
	}
}
