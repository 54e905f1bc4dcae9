package workqueue

import "errors"

// Sentinel errors, wrapped with %w where they carry detail; match them with
// errors.Is.
var (
	// ErrShutDown: the queue is shut down and has no more items to hand out.
	ErrShutDown = errors.New("workqueue: shut down")
	// ErrDrainAborted: a drain was cut short by ShutDown.
	ErrDrainAborted = errors.New("workqueue: drain aborted by ShutDown")
	// ErrInvalidLimiter: a rate limiter was built with parameters that
	// cannot work (a negative delay, a cap below the base, no burst...).
	ErrInvalidLimiter = errors.New("workqueue: invalid rate limiter")
)
