package driver

import (
	"context"
	"fmt"
	"time"

	"github.com/regentkv/regent/kv"
)

// LockPolicy is what a driver tells ResolveLock about its backend.
type LockPolicy struct {
	// DefaultTTL is the TTL of a lock whose LockOptions.TTL is zero.
	DefaultTTL time.Duration
	// CheckTTL returns an error (a *kv.TTLError) for a TTL the backend
	// cannot honour.
	CheckTTL func(ttl time.Duration) error
	// Margin is how long before the earliest moment the server may free
	// the lock the holder must have declared it lost, for a lock of TTL
	// ttl. Nil: no margin (the in-process memory store, whose expiry is
	// exact).
	Margin func(ttl time.Duration) time.Duration
}

// Lock is kv.LockOptions checked and with the defaults filled in.
type Lock struct {
	// TTL is how long the lock outlives a holder that died.
	TTL time.Duration
	// Value is the lock's value: a copy, never nil.
	Value []byte

	renew  time.Duration // as asked; 0: two thirds of the TTL
	margin func(time.Duration) time.Duration
}

// ResolveLock checks opts (nil: every default) against p: a negative TTL
// or RenewDeadline, a TTL the backend cannot honour, or a RenewDeadline
// not below the TTL (a cut-off holder could then act after the lock
// passed on) is a *kv.TTLError; an invalid value is kv.CheckValue's error.
func ResolveLock(opts *kv.LockOptions, p LockPolicy) (Lock, error) {
	var o kv.LockOptions
	if opts != nil {
		o = *opts
	}
	if err := kv.CheckLockOptions(o); err != nil {
		return Lock{}, err
	}
	l := Lock{TTL: o.TTL, renew: o.RenewDeadline, margin: p.Margin}
	if o.TTL == 0 {
		o.TTL = p.DefaultTTL
		l.TTL = o.TTL
		if err := kv.CheckLockOptions(o); err != nil { // against the default TTL
			return Lock{}, err
		}
	}
	if p.CheckTTL != nil {
		if err := p.CheckTTL(l.TTL); err != nil {
			return Lock{}, err
		}
	}
	l.Value = []byte{}
	if o.Value != nil {
		if err := kv.CheckValue(o.Value); err != nil {
			return Lock{}, err
		}
		l.Value = append(l.Value, o.Value...)
	}
	return l, nil
}

// Deadline is how long after the send time of its last answered renewal
// (or of the acquisition) a holder of a lock whose server-side lifetime is
// ttl still believes it holds it: RenewDeadline, by default two thirds of
// ttl (the kv.LockOptions contract), and never later than Margin(ttl)
// before the server may free the lock. ttl is the lock's TTL, or what the
// server actually granted where that can differ (a ZooKeeper session
// timeout).
func (l Lock) Deadline(ttl time.Duration) time.Duration {
	renew := l.renew
	if renew == 0 {
		renew = ttl * 2 / 3
	}
	if l.margin != nil {
		renew = max(min(renew, ttl-l.margin(ttl)), 0)
	}
	return renew
}

// RenewEvery is how often a holder renews a lock of server-side lifetime
// ttl: a third of it, and a third of an explicit RenewDeadline if that is
// shorter, so that a short deadline is not missed on a healthy connection.
func (l Lock) RenewEvery(ttl time.Duration) time.Duration {
	if l.renew > 0 {
		return min(ttl/3, l.renew/3)
	}
	return ttl / 3
}

// LostMargin is the margin of a backend that knows the earliest expiry
// exactly (the send time of the last answered renewal plus the TTL, as
// etcd leases and Consul sessions do): a tenth of the TTL, at least
// 200 ms, covering clock-rate differences and the time the holder needs
// to act on the lost channel.
func LostMargin(ttl time.Duration) time.Duration { return max(ttl/10, 200*time.Millisecond) }

// NewLockArgs makes every NewLock's checks in the one order: the key, the
// options (ResolveLock), then ctx and the Store's state (Usable, with
// closed the driver's error for a closed Store, or nil). Its errors name
// the key; the driver adds its own prefix.
func NewLockArgs(ctx context.Context, key string, opts *kv.LockOptions, p LockPolicy, closed error) (string, Lock, error) {
	k, err := kv.NormalizeKey(key)
	if err != nil {
		return "", Lock{}, err
	}
	lk, err := ResolveLock(opts, p)
	if err == nil {
		err = Usable(ctx, closed)
	}
	if err != nil {
		return "", Lock{}, fmt.Errorf("%q: %w", k, err)
	}
	return k, lk, nil
}
