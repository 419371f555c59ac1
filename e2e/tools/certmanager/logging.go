package main

import (
	"context"
	"errors"
	"strings"

	"github.com/go-logr/logr"
)

// quietSink keeps the libraries' logs concise: it shifts their info messages one verbosity level
// up (controller-runtime's "Starting Controller" and cert-manager's optimistic-locking re-queues
// show from -v=1 on), and once stopping() it drops errors that only say a request was canceled.
type quietSink struct {
	logr.LogSink
	stopping func() bool
}

func quiet(l logr.Logger, stopping func() bool) logr.Logger {
	sink := l.GetSink() // already initialised for logr's own frame
	if cd, ok := sink.(logr.CallDepthLogSink); ok {
		sink = cd.WithCallDepth(1) // a copy that also skips this wrapper's frame
	}
	return logr.New(quietSink{sink, stopping})
}

// Init does nothing: the wrapped sink was initialised by its own logger, and klog's Init would
// change the depth of its global sink.
func (quietSink) Init(logr.RuntimeInfo) {}

func (s quietSink) WithCallDepth(depth int) logr.LogSink {
	if cd, ok := s.LogSink.(logr.CallDepthLogSink); ok {
		return quietSink{cd.WithCallDepth(depth), s.stopping}
	}
	return s
}

func (s quietSink) Enabled(level int) bool { return s.LogSink.Enabled(level + 1) }

func (s quietSink) Info(level int, msg string, kv ...any) { s.LogSink.Info(level+1, msg, kv...) }

func (s quietSink) Error(err error, msg string, kv ...any) {
	if err != nil && s.stopping() && (errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "context canceled")) {
		return
	}
	s.LogSink.Error(err, msg, kv...)
}

func (s quietSink) WithValues(kv ...any) logr.LogSink {
	return quietSink{s.LogSink.WithValues(kv...), s.stopping}
}

func (s quietSink) WithName(name string) logr.LogSink {
	return quietSink{s.LogSink.WithName(name), s.stopping}
}
