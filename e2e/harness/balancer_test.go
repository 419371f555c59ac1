package harness

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// echoBackend answers every line on a TCP connection with "<name>: <line>", and serves a
// readiness endpoint that can be switched off.
type echoBackend struct {
	name   string
	ln     net.Listener
	ready  atomic.Bool
	readyz *httptest.Server
}

func newEchoBackend(t *testing.T, name string) *echoBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &echoBackend{name: name, ln: ln}
	e.ready.Store(true)
	e.readyz = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !e.ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "ok")
	}))
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					fmt.Fprintf(c, "%s: %s\n", name, sc.Text())
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); e.readyz.Close() })
	return e
}

type lineConn struct {
	net.Conn
	r *bufio.Reader
}

func dialBalancer(t *testing.T, b *Balancer) *lineConn {
	t.Helper()
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", b.Port()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &lineConn{Conn: c, r: bufio.NewReader(c)}
}

// ask sends a line and returns the name of the backend that answered ("" if the connection
// was closed).
func (c *lineConn) ask(msg string) string {
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := fmt.Fprintln(c, msg); err != nil {
		return ""
	}
	line, err := c.r.ReadString('\n')
	if err != nil {
		return ""
	}
	name, rest, _ := strings.Cut(strings.TrimSpace(line), ": ")
	if rest != msg {
		return "garbled:" + line
	}
	return name
}

func waitReady(t *testing.T, b *Balancer, want string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for strings.Join(b.Ready(), ",") != want {
		if time.Now().After(deadline) {
			t.Fatalf("ready backends %v, want %s", b.Ready(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBalancerRoundRobinReadinessAndRemoval(t *testing.T) {
	a, bb := newEchoBackend(t, "a"), newEchoBackend(t, "b")
	lb, err := NewBalancer()
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()

	// No backend: the connection is closed at once.
	if got := dialBalancer(t, lb).ask("hello"); got != "" {
		t.Fatalf("with no backend the connection was answered by %q", got)
	}

	lb.AddBackend("a", a.ln.Addr().String(), a.readyz.URL+"/readyz")
	lb.AddBackend("b", bb.ln.Addr().String(), bb.readyz.URL+"/readyz")
	waitReady(t, lb, "a,b")

	// New connections alternate; each connection sticks to its backend.
	counts := map[string]int{}
	var open []*lineConn
	for i := 0; i < 6; i++ {
		c := dialBalancer(t, lb)
		first := c.ask("x")
		if again := c.ask("y"); again != first {
			t.Fatalf("connection moved from %s to %s", first, again)
		}
		counts[first]++
		open = append(open, c)
	}
	if counts["a"] != 3 || counts["b"] != 3 {
		t.Fatalf("round robin over 6 connections gave %v, want 3 each", counts)
	}

	// b fails readiness: new connections go to a only, b's open connections keep working.
	bb.ready.Store(false)
	waitReady(t, lb, "a")
	for i := 0; i < 4; i++ {
		if got := dialBalancer(t, lb).ask("z"); got != "a" {
			t.Fatalf("new connection went to %q while b is not ready", got)
		}
	}
	for _, c := range open {
		if got := c.ask("still"); got != "a" && got != "b" {
			t.Fatalf("an open connection broke when b became unready: %q", got)
		}
	}

	// b is ready again, a is removed: new connections go to b, a's connections stay.
	bb.ready.Store(true)
	waitReady(t, lb, "a,b")
	if !lb.RemoveBackend("a") {
		t.Fatal("RemoveBackend(a) = false")
	}
	waitReady(t, lb, "b")
	for i := 0; i < 4; i++ {
		if got := dialBalancer(t, lb).ask("w"); got != "b" {
			t.Fatalf("new connection went to %q after a was removed", got)
		}
	}
	for _, c := range open {
		if got := c.ask("after-removal"); got == "" {
			t.Fatal("an open connection to a was cut when a was removed")
		}
	}
	per, rejected := lb.Connections()
	if rejected != 1 || per["b"] < 5 {
		t.Errorf("Connections() = %v rejected %d, want b >= 5 and 1 rejected", per, rejected)
	}

	// Close ends the open connections and the listener.
	if err := lb.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range open {
		if got := c.ask("closed"); got != "" {
			t.Fatalf("connection still answered by %q after Close", got)
		}
	}
	if _, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", lb.Port()), time.Second); err == nil {
		t.Fatal("the balancer still accepts connections after Close")
	}
	if err := lb.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
