package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"go.uber.org/zap/zapcore"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// logFlags are controller-runtime's zap flags, so serve logs like other controllers and
// operators: --zap-log-level, --zap-encoder, --zap-stacktrace-level, --zap-devel,
// --zap-time-encoding. The older --log-level is a deprecated alias of --zap-log-level.
type logFlags struct {
	opts zap.Options
}

// zapUsage rewrites controller-runtime's help texts in the style of the other flags.
var zapUsage = map[string]string{
	"zap-devel":            "development defaults: console encoder, debug level, stack traces from warn",
	"zap-encoder":          "log encoding: json or console (default json)",
	"zap-log-level":        "log level: debug, info, error, panic, or N > 0 for debug levels of increasing verbosity (default info)",
	"zap-stacktrace-level": "level at and above which stack traces are logged: info, error or panic (default: panics only)",
	"zap-time-encoding":    "time encoding: epoch, millis, nano, iso8601, rfc3339 or rfc3339nano (default epoch)",
}

func (l *logFlags) add(fs *pflag.FlagSet) {
	// No stack trace on error logs (a rejected policy reload is an error, not a crash), as
	// serve did before the zap flags.
	l.opts.StacktraceLevel = zapcore.DPanicLevel
	gofs := flag.NewFlagSet("zap", flag.ContinueOnError)
	l.opts.BindFlags(gofs)
	gofs.VisitAll(func(f *flag.Flag) {
		if u, ok := zapUsage[f.Name]; ok {
			f.Usage = u
		}
	})
	fs.AddGoFlagSet(gofs)
	fs.Var(levelAlias{&l.opts}, "log-level", "log level: debug, info, warn or error")
	_ = fs.MarkDeprecated("log-level", "use --zap-log-level")
}

// setup makes the configured logger controller-runtime's and klog's, and returns it.
func (l *logFlags) setup(w io.Writer) logr.Logger {
	opts := l.opts
	opts.DestWriter = w
	return setLogger(zap.New(zap.UseFlagOptions(&opts)))
}

// setupCLILogging is the logger of the commands other than serve: human-readable, to stderr.
func setupCLILogging(w io.Writer) {
	setLogger(zap.New(zap.WriteTo(w), zap.ConsoleEncoder(), zap.StacktraceLevel(zapcore.DPanicLevel)))
}

// setLogger routes controller-runtime's and client-go's (klog) logs into one logger, so a
// client-go warning comes out with the same encoder and level as runtimeguard's own lines.
func setLogger(log logr.Logger) logr.Logger {
	ctrl.SetLogger(log)
	klog.SetLogger(log)
	return log
}

// levelAlias is --log-level: a zap level name, including warn (which --zap-log-level lacks).
type levelAlias struct{ opts *zap.Options }

func (a levelAlias) String() string { return "info" }
func (a levelAlias) Type() string   { return "level" }
func (a levelAlias) Set(s string) error {
	var level zapcore.Level
	if err := level.UnmarshalText([]byte(s)); err != nil {
		return fmt.Errorf("want debug, info, warn or error")
	}
	a.opts.Level = level
	return nil
}
