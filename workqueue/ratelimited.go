package workqueue

// AddRateLimited adds item after the delay the queue's RateLimiter gives it:
// the retry path of a reconciler that failed on item.
func (q *Queue[T]) AddRateLimited(item T) {
	if q.metrics != nil {
		q.metrics.Retry()
	}
	q.AddAfter(item, q.limiter.When(item))
}

// Forget tells the rate limiter that item succeeded: its backoff restarts
// from the beginning. It does not remove item from the queue.
func (q *Queue[T]) Forget(item T) { q.limiter.Forget(item) }

// NumRequeues returns how many times item has been rate-limited since it was
// last forgotten (or since its limiter state expired).
func (q *Queue[T]) NumRequeues(item T) int { return q.limiter.NumRequeues(item) }
