package kv

// OptionsChecker is implemented by every regent driver: it says, without
// writing anything, whether the store would accept opts on a write, with
// the error that write would return (a TTL the backend cannot honour is
// its *TTLError, naming the minimum). Layers above check options up front
// with it, so that a bad option fails the call that carries it rather than
// a later write in the background (a discovery record published only
// once its health check passes, say).
type OptionsChecker interface {
	CheckWriteOptions(opts *WriteOptions) error
}

// CheckStoreWriteOptions checks opts with s's OptionsChecker, or with the
// backend-independent rules (CheckWriteOptions with no minimum) for a
// store that does not implement it.
func CheckStoreWriteOptions(s Store, opts *WriteOptions) error {
	if c, ok := s.(OptionsChecker); ok {
		return c.CheckWriteOptions(opts)
	}
	return CheckWriteOptions(opts, 0)
}
