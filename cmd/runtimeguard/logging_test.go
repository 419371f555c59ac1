package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	"k8s.io/klog/v2"
)

// serve's logger is controller-runtime's zap, set from the --zap-* flags, and klog (client-go's
// logs) goes through it too.
func TestServeLogging(t *testing.T) {
	// controller-runtime keeps the first logger it is given, so the checks use the logger
	// setup returns (the one serve hands to ctrl.SetLogger) and klog, which takes each one.
	setup := func(t *testing.T, args ...string) (logr.Logger, *bytes.Buffer) {
		t.Helper()
		var l logFlags
		fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		l.add(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		log := l.setup(&buf)
		t.Cleanup(func() { klog.ClearLogger() })
		return log, &buf
	}
	t.Run("default: JSON, info, klog lines included", func(t *testing.T) {
		log, buf := setup(t)
		klog.InfoS("from client-go", "host", "example")
		log.V(1).Info("a debug line")
		var line map[string]any
		if err := json.Unmarshal(buf.Bytes(), &line); err != nil || line["msg"] != "from client-go" || line["host"] != "example" {
			t.Errorf("klog's line %q (%v), want one JSON object with msg and host", buf, err)
		}
	})
	t.Run("--zap-encoder=console --zap-log-level=debug", func(t *testing.T) {
		log, buf := setup(t, "--zap-encoder=console", "--zap-log-level=debug")
		log.V(1).Info("a debug line")
		if out := buf.String(); !strings.Contains(out, "a debug line") || strings.HasPrefix(out, "{") {
			t.Errorf("got %q, want the debug line in console encoding", out)
		}
	})
	t.Run("the deprecated --log-level=error still sets the level", func(t *testing.T) {
		log, buf := setup(t, "--log-level=error")
		log.Info("an info line")
		klog.InfoS("a klog info line")
		if buf.Len() != 0 {
			t.Errorf("got %q at level error, want nothing", buf)
		}
	})
}
