package harness

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// SecretSyncInterval is how often a SecretSync polls the Secret.
const SecretSyncInterval = 200 * time.Millisecond

// SecretSync plays the kubelet's part for a Secret volume: it copies every key of a Secret
// into a directory whenever the Secret's data changes, the way the kubelet's atomic writer
// does, so that a reader never sees a mix of old and new files: the files of one version go
// into a fresh hidden directory "..<timestamp>", the symlink "..data" is switched to it with
// one rename, and each visible file (tls.crt, ...) is a symlink "<key> -> ..data/<key>".
// The kubelet's own delay (its sync period and cache, typically 60-90 s) is not imitated:
// the Secret is polled every SecretSyncInterval.
type SecretSync struct {
	Dir string

	c      client.Reader
	key    types.NamespacedName
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	data    map[string][]byte
	writes  int
	written time.Time
	lastErr error
	changed chan struct{} // closed and replaced at every write
}

// StartSecretSync waits until the Secret exists with all of the required keys (if any), writes
// it into dir (created if needed) and keeps it in sync until Stop.
func StartSecretSync(ctx context.Context, c client.Reader, key types.NamespacedName, dir string, timeout time.Duration, required ...string) (*SecretSync, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s := &SecretSync{Dir: dir, c: c, key: key, done: make(chan struct{}), changed: make(chan struct{})}
	deadline := time.Now().Add(timeout)
	for {
		err := s.syncOnce(ctx, required)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("Secret %s not ready for the volume after %s: %w", key, timeout, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(SecretSyncInterval):
		}
	}
	loopCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.loop(loopCtx)
	return s, nil
}

// Stop ends the sync loop.
func (s *SecretSync) Stop() {
	s.cancel()
	<-s.done
}

// Writes returns how many versions of the Secret were written and when the last one was.
func (s *SecretSync) Writes() (int, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes, s.written
}

// Changed returns a channel that is closed at the next write.
func (s *SecretSync) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// Err is the last error of the sync loop (nil after a successful poll).
func (s *SecretSync) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

func (s *SecretSync) loop(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(SecretSyncInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := s.syncOnce(ctx, nil)
		if ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		s.lastErr = err
		s.mu.Unlock()
	}
}

// syncOnce reads the Secret and writes it when its data changed.
func (s *SecretSync) syncOnce(ctx context.Context, required []string) error {
	secret := &corev1.Secret{}
	if err := s.c.Get(ctx, s.key, secret); err != nil {
		return err
	}
	for _, k := range required {
		if len(secret.Data[k]) == 0 {
			return fmt.Errorf("key %s missing", k)
		}
	}
	s.mu.Lock()
	same := s.data != nil && equalData(s.data, secret.Data)
	s.mu.Unlock()
	if same {
		return nil
	}
	if err := writeAtomically(s.Dir, secret.Data); err != nil {
		return err
	}
	s.mu.Lock()
	s.data = secret.Data
	s.writes++
	s.written = time.Now()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	return nil
}

func equalData(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

// writeAtomically publishes data in dir with the layout of the kubelet's atomic writer
// (pkg/volume/util/atomic_writer.go).
func writeAtomically(dir string, data map[string][]byte) error {
	const dataLink = "..data"
	oldTS, _ := os.Readlink(filepath.Join(dir, dataLink))
	tsDir, err := os.MkdirTemp(dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := os.WriteFile(filepath.Join(tsDir, k), data[k], 0o644); err != nil {
			return err
		}
	}
	tmpLink := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(tmpLink)
	if err := os.Symlink(filepath.Base(tsDir), tmpLink); err != nil {
		return err
	}
	if err := os.Rename(tmpLink, filepath.Join(dir, dataLink)); err != nil {
		return err
	}
	for _, k := range keys {
		link := filepath.Join(dir, k)
		if target, err := os.Readlink(link); err == nil && target == filepath.Join(dataLink, k) {
			continue
		}
		_ = os.Remove(link)
		if err := os.Symlink(filepath.Join(dataLink, k), link); err != nil {
			return err
		}
	}
	// Keys that disappeared lose their visible link, then the previous version goes.
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if name[0] == '.' {
			continue
		}
		if _, ok := data[name]; !ok && e.Type()&os.ModeSymlink != 0 {
			_ = os.Remove(filepath.Join(dir, name))
		}
	}
	if oldTS != "" && oldTS != filepath.Base(tsDir) {
		return os.RemoveAll(filepath.Join(dir, oldTS))
	}
	return nil
}
