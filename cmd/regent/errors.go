package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/regentkv/regent/election"
	"github.com/regentkv/regent/kv"
	"github.com/regentkv/regent/kv/kvurl"
)

// Exit statuses, for scripts.
const (
	exitOK          = 0
	exitFailed      = 1   // anything not below
	exitUsage       = 2   // bad flags, arguments, URL, key or TTL
	exitNotFound    = 3   // no such key, no leader
	exitConflict    = 4   // a compare-and-swap lost, the key exists or changed
	exitUnreachable = 5   // no server answered in time
	exitDenied      = 6   // permission denied or authentication failed
	exitDiffer      = 7   // diff found differences
	exitUnknown     = 8   // a write whose outcome is unknown (it may have applied)
	exitInterrupted = 130 // interrupted (Ctrl-C) before it was done, as shells report SIGINT
)

const exitCodesHelp = `Exit status:
  0  success
  1  failure not listed below
  2  usage: bad flags, arguments, URL, key or TTL
  3  not found: no such key, no leader
  4  conflict: a compare-and-swap lost, the key exists or was modified
  5  unreachable: no server answered in time
  6  denied: permission denied or authentication failed
  7  diff: the stores differ
  8  outcome unknown: a write was cut off and may have applied
  130 interrupted before it was done (watch and copy --follow end with 0)
`

// statusError carries an exit status with its message.
type statusError struct {
	code int
	err  error
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }

func withStatus(code int, format string, args ...any) error {
	return &statusError{code: code, err: fmt.Errorf(format, args...)}
}

// exitCode maps an error to the exit status a script can test.
func exitCode(err error) int {
	var se *statusError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &se):
		return se.code
	case errors.Is(err, kv.ErrOutcomeUnknown):
		return exitUnknown
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.Is(err, kv.ErrKeyNotFound), errors.Is(err, election.ErrNoLeader):
		return exitNotFound
	case errors.Is(err, kv.ErrKeyModified), errors.Is(err, kv.ErrKeyExists):
		return exitConflict
	case errors.Is(err, kv.ErrPermissionDenied), errors.Is(err, kv.ErrAuthFailed):
		return exitDenied
	case errors.Is(err, kv.ErrNotReachable), errors.Is(err, context.DeadlineExceeded):
		return exitUnreachable
	case errors.Is(err, kvurl.ErrInvalidURL), errors.Is(err, kv.ErrInvalidKey), errors.Is(err, kv.ErrInvalidTTL),
		errors.Is(err, kv.ErrNilValue), errors.Is(err, kv.ErrValueTooLarge), errors.Is(err, errUsage):
		return exitUsage
	}
	return exitFailed
}

var errUsage = errors.New("usage")
