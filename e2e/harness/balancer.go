package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// BalancerProbeInterval is how often a Balancer polls each backend's readiness URL.
const BalancerProbeInterval = 100 * time.Millisecond

// Balancer is a loopback TCP load balancer standing in for a Service in front of several
// webhook replicas: the API server is given the balancer's address, and the balancer spreads
// NEW connections round-robin over the backends whose readiness probe passes. Like endpoints
// plus kube-proxy: a backend that fails readiness (or is removed) gets no new connections, but
// the connections it already has stay open until one side closes them; a connection that
// arrives while no backend is ready is closed at once, and a failed dial to the chosen backend
// is not retried on another one (the client sees the failure, as with kube-proxy's DNAT).
type Balancer struct {
	ln     net.Listener
	client *http.Client
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	backends []*balancerBackend // in the order added
	next     int
	conns    map[net.Conn]struct{}
	closed   bool

	wg       sync.WaitGroup
	rejected atomic.Int64
}

type balancerBackend struct {
	name, addr, readyzURL string
	ready                 atomic.Bool
	conns                 atomic.Int64 // connections proxied to it, in total
	stop                  context.CancelFunc
}

// NewBalancer listens on 127.0.0.1:0 and starts accepting connections (with no backend yet,
// every connection is closed at once).
func NewBalancer() (*Balancer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Balancer{
		ln:     ln,
		client: &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
		ctx:    ctx,
		cancel: cancel,
		conns:  map[net.Conn]struct{}{},
	}
	b.wg.Add(1)
	go b.accept()
	return b, nil
}

// Port is the port the balancer listens on (on 127.0.0.1).
func (b *Balancer) Port() int { return b.ln.Addr().(*net.TCPAddr).Port }

// AddBackend adds a backend at addr (host:port) whose readiness is GET readyzURL answering
// 200. It is probed at once and then every BalancerProbeInterval; until a probe passes it gets
// no connection. Adding an existing name replaces that backend.
func (b *Balancer) AddBackend(name, addr, readyzURL string) {
	ctx, stop := context.WithCancel(b.ctx)
	be := &balancerBackend{name: name, addr: addr, readyzURL: readyzURL, stop: stop}
	b.probe(ctx, be)
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		stop()
		return
	}
	replaced := false
	for i, old := range b.backends {
		if old.name == name {
			old.stop()
			b.backends[i] = be
			replaced = true
		}
	}
	if !replaced {
		b.backends = append(b.backends, be)
	}
	b.wg.Add(1)
	b.mu.Unlock()
	go func() {
		defer b.wg.Done()
		t := time.NewTicker(BalancerProbeInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				be.ready.Store(false)
				return
			case <-t.C:
				b.probe(ctx, be)
			}
		}
	}()
}

// RemoveBackend stops sending new connections to the named backend; its open connections
// stay. It reports whether the backend existed.
func (b *Balancer) RemoveBackend(name string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, be := range b.backends {
		if be.name == name {
			be.stop()
			be.ready.Store(false)
			b.backends = append(b.backends[:i], b.backends[i+1:]...)
			return true
		}
	}
	return false
}

// Ready returns the names of the backends that currently receive new connections, sorted.
func (b *Balancer) Ready() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, be := range b.backends {
		if be.ready.Load() {
			out = append(out, be.name)
		}
	}
	sort.Strings(out)
	return out
}

// Connections returns how many connections were proxied to each backend so far (backends
// that were removed are not listed) and how many were closed because no backend was ready.
func (b *Balancer) Connections() (perBackend map[string]int64, rejected int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	perBackend = map[string]int64{}
	for _, be := range b.backends {
		perBackend[be.name] = be.conns.Load()
	}
	return perBackend, b.rejected.Load()
}

// Close stops listening, stops the probes, closes every open connection and waits for all
// goroutines. It is safe to call more than once.
func (b *Balancer) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	err := b.ln.Close()
	b.cancel()
	for c := range b.conns {
		_ = c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
	return err
}

func (b *Balancer) probe(ctx context.Context, be *balancerBackend) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, be.readyzURL, nil)
	if err != nil {
		be.ready.Store(false)
		return
	}
	resp, err := b.client.Do(req)
	if err != nil {
		be.ready.Store(false)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	be.ready.Store(resp.StatusCode == http.StatusOK && ctx.Err() == nil)
}

// pick returns the next ready backend after the last one used, or nil.
func (b *Balancer) pick() *balancerBackend {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(b.backends)
	for i := 0; i < n; i++ {
		be := b.backends[(b.next+i)%n]
		if be.ready.Load() {
			b.next = (b.next + i + 1) % n
			return be
		}
	}
	return nil
}

// track registers an open connection; it returns false (and closes c) once the balancer is
// closed.
func (b *Balancer) track(c net.Conn) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		_ = c.Close()
		return false
	}
	b.conns[c] = struct{}{}
	return true
}

func (b *Balancer) untrack(c net.Conn) {
	b.mu.Lock()
	delete(b.conns, c)
	b.mu.Unlock()
	_ = c.Close()
}

func (b *Balancer) accept() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		be := b.pick()
		if be == nil {
			b.rejected.Add(1)
			_ = c.Close()
			continue
		}
		if !b.track(c) {
			return
		}
		b.wg.Add(1)
		go b.proxy(c, be)
	}
}

func (b *Balancer) proxy(front net.Conn, be *balancerBackend) {
	defer b.wg.Done()
	defer b.untrack(front)
	d := net.Dialer{Timeout: 2 * time.Second}
	back, err := d.DialContext(b.ctx, "tcp", be.addr)
	if err != nil {
		return
	}
	if !b.track(back) {
		return
	}
	defer b.untrack(back)
	be.conns.Add(1)
	var pipes sync.WaitGroup
	pipes.Add(2)
	pipe := func(dst, src net.Conn) {
		defer pipes.Done()
		_, _ = io.Copy(dst, src)
		// Pass the end of stream on (half-close), so the other direction can still finish.
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		} else {
			_ = dst.Close()
		}
	}
	go pipe(back, front)
	go pipe(front, back)
	pipes.Wait()
}

// String describes the balancer for logs.
func (b *Balancer) String() string {
	per, rejected := b.Connections()
	return fmt.Sprintf("balancer 127.0.0.1:%d ready=%v connections=%v rejected=%d", b.Port(), b.Ready(), per, rejected)
}
