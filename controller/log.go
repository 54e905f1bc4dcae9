package controller

import (
	"context"

	"go.uber.org/zap"
)

type loggerKey struct{}

// LoggerFrom returns the logger a Controller put in a reconcile's ctx: the
// controller's logger with its name and the request's key attached. Without
// one it returns a no-op logger, never nil.
func LoggerFrom(ctx context.Context) *zap.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*zap.Logger); ok {
		return l
	}
	return zap.NewNop()
}

func withLogger(ctx context.Context, l *zap.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, l)
}
