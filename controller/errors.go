package controller

import "errors"

// Sentinel errors of the package, wrapped with %w: match them with errors.Is.
var (
	// ErrInvalidConfig: New or NewManager was given a Config it cannot run
	// with; the message names the field.
	ErrInvalidConfig = errors.New("controller: invalid config")
	// ErrAlreadyRunning: Run was called while a previous Run had not
	// returned, or a Manager was run twice.
	ErrAlreadyRunning = errors.New("controller: already running")
	// ErrStarted: a Manager was given a runnable after Run was called.
	ErrStarted = errors.New("controller: manager already started")
	// ErrShutdownTimeout: runnables were still running when the Manager's
	// ShutdownTimeout passed; the message names them.
	ErrShutdownTimeout = errors.New("controller: shutdown timed out")
	// ErrPanic: a reconcile panicked; the error passed on (to metrics and
	// logs) wraps it with the panic value.
	ErrPanic = errors.New("controller: reconcile panicked")
)

// Terminal marks err as terminal: the controller logs and counts it but
// does not retry the key, whose backoff is reset. Use it for errors that a
// retry cannot fix (an invalid spec); a later change of the key reconciles
// it again. Terminal(nil) is nil.
func Terminal(err error) error {
	if err == nil {
		return nil
	}
	return &terminalError{err}
}

// IsTerminal reports whether err, or an error it wraps, was marked with
// Terminal.
func IsTerminal(err error) bool {
	var t *terminalError
	return errors.As(err, &t)
}

type terminalError struct{ err error }

func (e *terminalError) Error() string { return "terminal: " + e.err.Error() }
func (e *terminalError) Unwrap() error { return e.err }
