package serve

import (
	"context"
	"crypto/sha256"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/runtimeguard/runtimeguard/webhook/policy"
)

// policyWatcher reloads the policy (--policies, --policy-modules and --policy-data paths) when
// its content changes. A mounted ConfigMap changes by swapping a "..data" symlink, which shows
// up as events on the directory itself, so directories (not files) are watched; a periodic
// resync catches anything fsnotify misses. A reload compiles the new set first and swaps only
// on success: a broken set leaves the last good one serving. A replica that started without a
// good set gets its first one the same way.
type policyWatcher struct {
	paths   []string
	load    func() (*policy.Set, error)
	gate    *policyGate
	log     logr.Logger
	metrics *reloadMetrics
	// resync is how often the paths are checked without an event. Default 30s.
	resync time.Duration
	// debounce groups the burst of events of one ConfigMap update. Default 250ms.
	debounce time.Duration

	lastDigest [32]byte
}

// Start blocks until ctx is done. It implements manager.Runnable.
func (w *policyWatcher) Start(ctx context.Context) error {
	if w.resync == 0 {
		w.resync = 30 * time.Second
	}
	if w.debounce == 0 {
		w.debounce = 250 * time.Millisecond
	}
	w.lastDigest, _ = digestDirs(w.paths)
	watcher, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer watcher.Close()
	for _, dir := range watchDirs(w.paths) {
		if err := watcher.Add(dir); err != nil {
			w.log.Error(err, "cannot watch the policy directory; relying on periodic resync", "dir", dir)
		}
	}
	resync := time.NewTicker(w.resync)
	defer resync.Stop()
	var pending <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-watcher.Events:
			pending = time.After(w.debounce)
		case err := <-watcher.Errors:
			w.log.Error(err, "policy directory watch error")
		case <-pending:
			pending = nil
			w.reload(ctx)
		case <-resync.C:
			w.reload(ctx)
		}
	}
}

// reload loads and swaps the policy set if the content of its paths changed. Each failure is
// counted once: a broken set until its content changes, an unreadable path until its error
// changes, however many resyncs and events come meanwhile.
func (w *policyWatcher) reload(ctx context.Context) {
	digest, err := digestDirs(w.paths)
	if err != nil {
		digest = sha256.Sum256([]byte("unreadable\x00" + err.Error()))
	}
	if digest == w.lastDigest {
		return
	}
	if err == nil {
		var set *policy.Set
		if set, err = w.load(); err == nil {
			err = w.gate.apply(ctx, set)
		}
	}
	w.lastDigest = digest // a broken set is reported once, not on every resync
	if err != nil {
		w.gate.fail(err)
		w.metrics.observeReload(err)
		if w.gate.Engine() == nil {
			w.log.Error(err, "policy still broken; no policy serves and the replica stays NotReady", "paths", w.paths)
		} else {
			w.log.Error(err, "policy reload rejected; the previous policy keeps serving", "paths", w.paths)
		}
		return
	}
	engine := w.gate.Engine()
	w.metrics.observeReload(nil)
	w.metrics.observePolicy(engine)
	generation, hash := engine.Generation()
	w.log.Info("policy reloaded", "paths", w.paths, "files", engine.Files(), "generation", generation, "hash", hash)
}

// watchDirs are the directories to watch for paths: each directory, and the directory of each
// file (a file replaced by rename is only seen from its directory).
func watchDirs(paths []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range paths {
		dir := p
		if info, err := os.Stat(p); err == nil && !info.IsDir() {
			dir = filepath.Dir(p)
		}
		if !seen[dir] {
			seen[dir] = true
			out = append(out, dir)
		}
	}
	return out
}

// digestDirs hashes the names and contents of the files a policy set is loaded from (the files
// under each directory, or the path itself when it is a file), following symlinks and skipping
// hidden entries, like policy.LoadDirs.
func digestDirs(dirs []string) ([32]byte, error) {
	var paths []string
	for _, dir := range dirs {
		if err := collectFiles(dir, &paths); err != nil {
			return [32]byte{}, err
		}
	}
	sort.Strings(paths)
	h := sha256.New()
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return [32]byte{}, err
		}
		h.Write([]byte(p))
		h.Write([]byte{0})
		h.Write(b)
		h.Write([]byte{0})
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out, nil
}

func collectFiles(dir string, paths *[]string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path != dir && len(d.Name()) > 0 && d.Name()[0] == '.' {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.IsDir() {
			*paths = append(*paths, path)
		}
		return nil
	})
}

// reloadMetrics count policy reloads and say which policy serves; a nil *reloadMetrics
// records nothing.
type reloadMetrics struct {
	reloads     *prometheus.CounterVec
	policyStale prometheus.Gauge
	generation  *prometheus.GaugeVec
}

func newReloadMetrics(reg prometheus.Registerer) *reloadMetrics {
	m := &reloadMetrics{
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "runtimeguard_policy_reloads_total",
			Help: "Policy reloads, by result: success, or error (the new set did not load or compile; the previous set kept serving).",
		}, []string{"result"}),
		policyStale: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "runtimeguard_policy_stale",
			Help: "1 when the policy files hold a set that failed to load, so an older set is serving (or, on a replica that started with it, none: that replica is NotReady).",
		}),
		generation: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "runtimeguard_policy_generation",
			Help: "Policy sets compiled by this replica (1 = the one it started with); hash is the serving set's content hash, the same on every replica that runs the same policy.",
		}, []string{"hash"}),
	}
	reg.MustRegister(m.reloads, m.policyStale, m.generation)
	return m
}

// observePolicy records the engine's serving policy: one series, labelled with its hash.
func (m *reloadMetrics) observePolicy(e *policy.Engine) {
	if m == nil || e == nil {
		return
	}
	generation, hash := e.Generation()
	m.generation.Reset()
	m.generation.WithLabelValues(hash).Set(float64(generation))
}

func (m *reloadMetrics) observeReload(err error) {
	if m == nil {
		return
	}
	if err != nil {
		m.reloads.WithLabelValues("error").Inc()
		m.policyStale.Set(1)
		return
	}
	m.reloads.WithLabelValues("success").Inc()
	m.policyStale.Set(0)
}
