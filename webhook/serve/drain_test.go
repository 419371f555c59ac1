package serve

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// While draining, every answer makes the client drop its connection (HTTP/1.1: Connection:
// close; HTTP/2: GOAWAY), so the next request opens a new one, which a Service sends to a
// ready replica. Before the drain, connections are kept.
func TestCloseWhileDrainingMovesClientsToNewConnections(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		name := "http1.1"
		if h2 {
			name = "h2"
		}
		t.Run(name, func(t *testing.T) {
			var draining atomic.Bool
			var conns atomic.Int64
			srv := httptest.NewUnstartedServer(closeWhileDraining(&draining, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, "ok")
			})))
			srv.EnableHTTP2 = h2
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					conns.Add(1)
				}
			}
			srv.StartTLS()
			defer srv.Close()
			tr := srv.Client().Transport.(*http.Transport).Clone()
			tr.ForceAttemptHTTP2 = h2
			if !h2 {
				tr.TLSClientConfig.NextProtos = []string{"http/1.1"}
				tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
			}
			c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
			defer tr.CloseIdleConnections()
			get := func() *http.Response {
				t.Helper()
				resp, err := c.Get(srv.URL)
				if err != nil {
					t.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if (resp.ProtoMajor == 2) != h2 {
					t.Fatalf("answered over %s", resp.Proto)
				}
				return resp
			}

			for i := 0; i < 3; i++ {
				if resp := get(); resp.Close {
					t.Fatal("Connection: close before the drain")
				}
			}
			if n := conns.Load(); n != 1 {
				t.Fatalf("%d connections for 3 requests before the drain, want 1 (kept alive)", n)
			}

			draining.Store(true)
			if resp := get(); !h2 && !resp.Close {
				t.Fatal("an HTTP/1.1 answer during the drain lacks Connection: close")
			}
			// The client learns of the close with the answer (HTTP/1.1) or right after it
			// (HTTP/2 GOAWAY); either way the next requests use a new connection.
			deadline := time.Now().Add(2 * time.Second)
			for conns.Load() < 2 && time.Now().Before(deadline) {
				get()
				time.Sleep(10 * time.Millisecond)
			}
			if n := conns.Load(); n < 2 {
				t.Fatalf("still %d connection after answers during the drain, want a new one", n)
			}
		})
	}
}
