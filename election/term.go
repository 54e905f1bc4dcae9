package election

import (
	"context"
	"fmt"
	"sync"

	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/lock"
)

// Term is one leadership term of this process: its fencing token and
// writes that the server rejects once the term is over. OnStartedLeading's
// ctx carries it (TermFrom).
type Term struct {
	Leader
	mutex    *lock.Mutex
	released chan struct{}

	resign     chan struct{} // closed by Resign: a request to end this term
	resignOnce sync.Once
	end        context.CancelCauseFunc // cancels the leader's ctx; set before the term is visible
}

type termKey struct{}

// TermFrom returns the Term carried by a leader's ctx.
func TermFrom(ctx context.Context) (*Term, bool) {
	t, ok := ctx.Value(termKey{}).(*Term)
	return t, ok
}

func (t *Term) current() error {
	if tok := t.mutex.Token(); tok != t.Token {
		return fmt.Errorf("election: term %d is over: %w", t.Token, kv.ErrLockLost)
	}
	return nil
}

// GuardedPut writes key only while this term lasts, checked by the server.
func (t *Term) GuardedPut(ctx context.Context, key string, value []byte, opts *kv.WriteOptions) error {
	if err := t.current(); err != nil {
		return err
	}
	return t.mutex.GuardedPut(ctx, key, value, opts)
}

// GuardedDelete deletes key only while this term lasts, checked by the
// server.
func (t *Term) GuardedDelete(ctx context.Context, key string) error {
	if err := t.current(); err != nil {
		return err
	}
	return t.mutex.GuardedDelete(ctx, key)
}
