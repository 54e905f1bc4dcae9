package embedded

import (
	"time"

	"go.uber.org/zap"
)

// Option configures Start.
type Option interface{ apply(*options) }

type options struct {
	dataDir          string
	logger           *zap.Logger
	progressInterval time.Duration
	noFsync          bool
	tls              *ClientTLS
	bcryptCost       uint
}

// ClientTLS is the server side of client TLS: the server's certificate
// and key, and, with ClientCertAuth, the CA whose client certificates it
// accepts (PEM files).
type ClientTLS struct {
	CertFile, KeyFile string
	TrustedCAFile     string
	ClientCertAuth    bool
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithDataDir keeps the server's data in dir instead of a temporary
// directory. Close leaves dir in place, so that a test can start a new server
// on the same data.
func WithDataDir(dir string) Option {
	return optionFunc(func(o *options) { o.dataDir = dir })
}

// WithLogger sends the server's logs to l. The default discards them: etcd
// logs at info level by default, which drowns test output.
func WithLogger(l *zap.Logger) Option {
	return optionFunc(func(o *options) {
		if l != nil {
			o.logger = l
		}
	})
}

// WithProgressNotifyInterval makes the server send a progress notification
// to idle watchers every d (etcd's default is 10 minutes). Useful for tests
// that wait for a watcher to catch up with a revision.
func WithProgressNotifyInterval(d time.Duration) Option {
	return optionFunc(func(o *options) { o.progressInterval = d })
}

// WithUnsafeNoFsync disables fsync in the server: writes get much faster and
// a machine crash loses them. For tests only.
func WithUnsafeNoFsync() Option {
	return optionFunc(func(o *options) { o.noFsync = true })
}

// WithClientTLS serves the client API over TLS (https:// endpoints).
func WithClientTLS(c ClientTLS) Option {
	return optionFunc(func(o *options) { o.tls = &c })
}

// WithBcryptCost sets the cost of the bcrypt hashes of auth passwords
// (etcd's default is 10). Tests that open many authenticated clients at
// once want the minimum, 4: every authentication hashes the password.
func WithBcryptCost(cost uint) Option {
	return optionFunc(func(o *options) { o.bcryptCost = cost })
}
