//go:build chaos

package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/regentkv/regent/election"
	"github.com/regentkv/regent/kv"
)

// A candidate is a separate OS process (this test binary, re-executed by
// testenv.ChildCommand) that campaigns in one election and, while it
// leads, makes fenced writes, each to a key of its own. It records what it
// did, one JSON line per event, in a file the test reads afterwards.

// candidateArgs are a candidate's arguments.
type candidateArgs struct {
	Client   clientConfig
	Identity string
	Election string // the election key
	Fenced   string // prefix of the fenced writes
	Events   string // path of the events file
}

// event is one line of a candidate's events file.
type event struct {
	At       int64  `json:"at"` // mono()
	Identity string `json:"id"`
	PID      int    `json:"pid"`
	Kind     string `json:"kind"` // boot, up, start, write, stop, exit, error
	Token    uint64 `json:"token,omitempty"`
	Key      string `json:"key,omitempty"`
	Result   string `json:"result,omitempty"` // write: accepted, rejected, unknown
	// Local: a rejected write that never reached the server (the Locker
	// or the Term knew the hold was over).
	Local bool   `json:"local,omitempty"`
	Err   string `json:"err,omitempty"`
	Sent  int64  `json:"sent,omitempty"` // write: mono() as it was made
}

const (
	writeAccepted = "accepted"
	writeRejected = "rejected" // the server refused it: the term was over
	writeFailed   = "failed"   // a definite failure (not sent): not applied
	writeUnknown  = "unknown"  // kv.ErrOutcomeUnknown: maybe applied
)

// fencedValue is what a fenced write stores.
type fencedValue struct {
	Identity string `json:"id"`
	Token    uint64 `json:"token"`
	Seq      int    `json:"seq"`
}

// recorder appends events to the events file, one write(2) per line, so
// that a SIGKILL loses nothing it recorded.
type recorder struct {
	mu   sync.Mutex
	f    *os.File
	id   string
	pid  int
	fail error
}

func (r *recorder) emit(ev event) {
	ev.At, ev.Identity, ev.PID = mono(), r.id, r.pid
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.f.Write(append(b, '\n')); err != nil && r.fail == nil {
		r.fail = err
	}
}

func runCandidate(raw json.RawMessage) int {
	var a candidateArgs
	if err := json.Unmarshal(raw, &a); err != nil {
		fmt.Fprintf(os.Stderr, "candidate: bad args: %v\n", err)
		return 2
	}
	f, err := os.OpenFile(a.Events, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintf(os.Stderr, "candidate: %v\n", err)
		return 2
	}
	defer func() { _ = f.Close() }()
	rec := &recorder{f: f, id: a.Identity, pid: os.Getpid()}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	// From here on a SIGTERM is a request to stop cleanly; the test waits
	// for this event before it counts the process as started.
	rec.emit(event{Kind: "boot"})
	log, _ := zap.NewDevelopment(zap.IncreaseLevel(zap.WarnLevel))
	store, err := a.Client.open(ctx, log.Named("store"))
	if err != nil {
		rec.emit(event{Kind: "error", Err: "open: " + err.Error()})
		if ctx.Err() != nil {
			return 0 // told to stop before the server came back
		}
		return 1
	}
	rec.emit(event{Kind: "up"})
	e, err := election.New(ctx, store, election.Config{
		Key:      a.Election,
		Identity: a.Identity,
		TTL:      electionTTL,
		Logger:   log.Named("election"),
		Callbacks: election.Callbacks{
			OnStartedLeading: func(lctx context.Context) { lead(lctx, a, rec) },
		},
	})
	if err != nil {
		_ = store.Close()
		if ctx.Err() != nil {
			return 0 // told to stop while New was still talking to the server
		}
		rec.emit(event{Kind: "error", Err: "election.New: " + err.Error()})
		return 1
	}
	runErr := e.Run(ctx)
	closeErr := store.Close()
	if runErr != nil {
		rec.emit(event{Kind: "error", Err: "Run: " + runErr.Error()})
		return 1
	}
	if closeErr != nil {
		rec.emit(event{Kind: "error", Err: "Close: " + closeErr.Error()})
		return 1
	}
	rec.emit(event{Kind: "exit"})
	if rec.fail != nil {
		fmt.Fprintf(os.Stderr, "candidate: events file: %v\n", rec.fail)
		return 1
	}
	return 0
}

// lead is OnStartedLeading: fenced writes every 20 ms until the term ends.
// A write runs to its answer even when the term ends meanwhile (its ctx is
// not the leader's), so that the recorded result is the server's: the
// write was accepted, refused as stale, or its outcome is unknown.
func lead(ctx context.Context, a candidateArgs, rec *recorder) {
	term, ok := election.TermFrom(ctx)
	if !ok {
		rec.emit(event{Kind: "error", Err: "no term in the leader's ctx"})
		return
	}
	rec.emit(event{Kind: "start", Token: term.Token})
	// The term ends when the election cancels ctx: "end" records that
	// moment. "stop" comes when this function returns, which may be later
	// by a write in flight (it runs to the server's answer, and its
	// acceptance then is the fencing token's business, not the term's).
	ended := make(chan struct{})
	context.AfterFunc(ctx, func() {
		rec.emit(event{Kind: "end", Token: term.Token})
		close(ended)
	})
	defer func() {
		<-ended // lead returns only once ctx is done
		rec.emit(event{Kind: "stop", Token: term.Token})
	}()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for seq := 1; ; seq++ {
		key := fmt.Sprintf("%s/%020d-%06d", a.Fenced, term.Token, seq)
		v, _ := json.Marshal(fencedValue{Identity: a.Identity, Token: term.Token, Seq: seq})
		sent := mono()
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
		err := term.GuardedPut(wctx, key, v, nil)
		cancel()
		ev := event{Kind: "write", Token: term.Token, Key: key, Result: writeAccepted, Sent: sent}
		switch {
		case err == nil:
		case errors.Is(err, kv.ErrOutcomeUnknown):
			ev.Result, ev.Err = writeUnknown, err.Error()
		case errors.Is(err, kv.ErrLockLost), errors.Is(err, kv.ErrNotLocked):
			ev.Result, ev.Err = writeRejected, err.Error()
			ev.Local = errors.Is(err, kv.ErrNotLocked) || strings.Contains(err.Error(), "is over")
		default:
			ev.Result, ev.Err = writeFailed, err.Error()
		}
		rec.emit(ev)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
