// Package load is the benchmarks' load generator: it posts AdmissionReviews to a webhook over
// TLS, closed loop (fixed concurrency) or open loop (fixed rate, latency measured from each
// request's scheduled time so a stalled server cannot hide its queue), verifies every answer,
// and charges the server's CPU time (from /proc) to the admissions it answered.
//
// It only ever talks to loopback addresses, and every run is bounded in count and time.
package load

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/runtimeguard/runtimeguard/e2e/bench/internal/proc"
	"github.com/runtimeguard/runtimeguard/e2e/bench/review"
)

// Config is one run.
type Config struct {
	// Label names the run in reports.
	Label string
	// URL is the webhook endpoint, e.g. https://127.0.0.1:9443/mutate-v1-pod. Loopback only.
	URL string
	// RootCAs verifies the server certificate.
	RootCAs *x509.CertPool
	// HTTP2 multiplexes every request over one HTTP/2 connection; otherwise each worker has
	// its own HTTP/1.1 keep-alive connection, as the API server's webhook client does.
	HTTP2 bool
	// Concurrency is the number of workers (closed loop: requests in flight).
	Concurrency int
	// Rate > 0 switches to open loop: Rate requests per second, scheduled at fixed intervals
	// and served by Concurrency workers (give enough of them to absorb a stall).
	Rate float64
	// Requests and Duration bound the measured phase: it stops at whichever comes first.
	Requests int
	Duration time.Duration
	// Warmup requests run (closed loop) before measuring: connections, caches, JIT-free Go.
	Warmup int
	// Unique gives every request a distinct Pod (a decision-cache miss).
	Unique bool
	// ExpectClass is the class the patch must set ("" expects no patch).
	ExpectClass string
	// Validate sends the Pod to the validating webhook with spec.runtimeClassName already set to
	// ExpectClass (as the mutating webhook left it) and expects it allowed without a patch or a
	// warning.
	Validate bool
	// ServerPID, when set, is the server process whose CPU and memory are charged.
	ServerPID int
	// Template is the review to send (default: review.Pod(), naming ExpectClass with Validate).
	Template *review.Template
	// Mix, when set, replaces Template, ExpectClass and Validate: request i sends
	// Mix[i%len(Mix)] and verifies that variant's answer.
	Mix []review.Variant
	// Timeout bounds one request (default 10 s).
	Timeout time.Duration
}

// Result is what one run measured.
type Result struct {
	Label       string  `json:"label"`
	Mode        string  `json:"mode"`
	Proto       string  `json:"proto"`
	Concurrency int     `json:"concurrency"`
	Rate        float64 `json:"rate,omitempty"`
	Unique      bool    `json:"unique"`
	BodyBytes   int     `json:"bodyBytes"`

	Requests   int           `json:"requests"`
	Errors     int           `json:"errors"`
	FirstError string        `json:"firstError,omitempty"`
	Elapsed    time.Duration `json:"elapsed"`
	Throughput float64       `json:"throughput"`
	P50        time.Duration `json:"p50"`
	P90        time.Duration `json:"p90"`
	P99        time.Duration `json:"p99"`
	Max        time.Duration `json:"max"`

	// ServerCPU is the server's user+system CPU time during the measured phase.
	ServerCPU time.Duration `json:"serverCPU,omitempty"`
	// CPUPerAdmission is ServerCPU / Requests.
	CPUPerAdmission time.Duration `json:"cpuPerAdmission,omitempty"`
	// ServerRSS and ServerHWM are VmRSS and VmHWM after the run, in bytes.
	ServerRSS int64 `json:"serverRSS,omitempty"`
	ServerHWM int64 `json:"serverHWM,omitempty"`
	// ClientCPU is this process's CPU time during the measured phase (the load generator's
	// own cost, on the same cores).
	ClientCPU time.Duration `json:"clientCPU"`
	// OtherCPU is the share of the machine's CPU (all cores) that other processes used during
	// the measured phase: the noise the numbers were taken under.
	OtherCPU float64 `json:"otherCPU"`
}

// String is a one-line summary.
func (r *Result) String() string {
	s := fmt.Sprintf("%-28s %-6s %-8s c=%-3d n=%-6d err=%d %8.0f/s p50=%-9s p90=%-9s p99=%-9s max=%-9s",
		r.Label, r.Mode, r.Proto, r.Concurrency, r.Requests, r.Errors, r.Throughput,
		round(r.P50), round(r.P90), round(r.P99), round(r.Max))
	if r.ServerCPU > 0 {
		s += fmt.Sprintf(" cpu/adm=%s rss=%sMiB hwm=%sMiB", round(r.CPUPerAdmission), proc.MiB(r.ServerRSS), proc.MiB(r.ServerHWM))
	}
	s += fmt.Sprintf(" others=%.0f%%", 100*r.OtherCPU)
	if r.FirstError != "" {
		s += "\n  first error: " + r.FirstError
	}
	return s
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}

// CheckLoopback refuses any target that is not on this machine's loopback interface.
func CheckLoopback(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	if u.Scheme != "https" {
		return fmt.Errorf("%s: only https targets", rawURL)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); ip != nil {
		if !ip.IsLoopback() {
			return fmt.Errorf("refusing %s: the load generator only targets loopback addresses (127.0.0.0/8, ::1)", host)
		}
		return nil
	}
	if host != "localhost" {
		return fmt.Errorf("refusing %s: the load generator only targets loopback addresses (127.0.0.1, ::1, localhost)", host)
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return err
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("refusing localhost: it resolves to %s, not a loopback address", ip)
		}
	}
	return nil
}

type sample struct {
	latency time.Duration
	err     error
}

type runner struct {
	cfg       Config
	verifiers []*review.Verifier
	shared    *http.Client
	seq       atomic.Uint64
	proto     atomic.Value
}

func (r *runner) client() *http.Client {
	if r.shared != nil {
		return r.shared
	}
	return &http.Client{Transport: newTransport(r.cfg, false), Timeout: r.cfg.Timeout}
}

func newTransport(cfg Config, h2 bool) *http.Transport {
	tr := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: 1,
		MaxConnsPerHost:     1,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	}
	tr.Protocols = new(http.Protocols)
	if h2 {
		tr.Protocols.SetHTTP2(true)
		tr.MaxConnsPerHost = 0
	} else {
		tr.Protocols.SetHTTP1(true)
	}
	return tr
}

// worker sends requests taken from next until it returns false.
func (r *runner) do(c *http.Client, body []byte) ([]byte, error) {
	i := r.seq.Add(1)
	n := i % uint64(len(r.cfg.Mix))
	v := &r.cfg.Mix[n]
	body = v.Template.Body(body, i, r.cfg.Unique)
	req, err := http.NewRequest(http.MethodPost, r.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return body, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return body, err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		return body, err
	}
	r.proto.Store(resp.Proto)
	if resp.StatusCode != http.StatusOK {
		return body, fmt.Errorf("HTTP %d: %.300s", resp.StatusCode, answer)
	}
	if r.cfg.HTTP2 != (resp.ProtoMajor == 2) {
		return body, fmt.Errorf("answered over %s", resp.Proto)
	}
	if err := r.verifiers[n].Verify(answer, review.UID(i)); err != nil {
		return body, fmt.Errorf("%s: %w", v.Name, err)
	}
	return body, nil
}

// Run runs cfg until its count or time bound, or ctx ends.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := CheckLoopback(cfg.URL); err != nil {
		return nil, err
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 1
	}
	if cfg.Requests <= 0 && cfg.Duration <= 0 {
		return nil, errors.New("give a request count, a duration or both: runs are bounded")
	}
	if cfg.Requests <= 0 {
		cfg.Requests = 10_000_000
	}
	if cfg.Duration <= 0 {
		cfg.Duration = time.Hour
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if len(cfg.Mix) == 0 {
		if cfg.Validate && cfg.ExpectClass == "" {
			return nil, errors.New("validate: give the class the Pod names (ExpectClass)")
		}
		if cfg.Template == nil {
			pod := review.Pod()
			if cfg.Validate {
				pod.Spec.RuntimeClassName = &cfg.ExpectClass
			}
			t, err := review.NewTemplate(pod)
			if err != nil {
				return nil, err
			}
			cfg.Template = t
		}
		cfg.Mix = []review.Variant{{Name: "template", Template: cfg.Template, Class: cfg.ExpectClass, Validate: cfg.Validate}}
	}
	r := &runner{cfg: cfg}
	for _, v := range cfg.Mix {
		r.verifiers = append(r.verifiers, v.Verifier())
	}
	if cfg.HTTP2 {
		r.shared = &http.Client{Transport: newTransport(cfg, true), Timeout: cfg.Timeout}
	}
	clients := make([]*http.Client, cfg.Concurrency)
	for i := range clients {
		clients[i] = r.client()
	}
	defer func() {
		for _, c := range clients {
			c.CloseIdleConnections()
		}
	}()

	res := &Result{Label: cfg.Label, Mode: "closed", Concurrency: cfg.Concurrency, Unique: cfg.Unique, BodyBytes: cfg.Mix[0].Template.Size()}
	if cfg.Rate > 0 {
		res.Mode, res.Rate = "open", cfg.Rate
	}

	// Warm-up: closed loop, not measured; it also opens every worker's connection.
	if cfg.Warmup > 0 {
		var left atomic.Int64
		left.Store(int64(cfg.Warmup))
		var wg sync.WaitGroup
		var werr atomic.Value
		for _, c := range clients {
			wg.Add(1)
			go func(c *http.Client) {
				defer wg.Done()
				var body []byte
				for left.Add(-1) >= 0 && ctx.Err() == nil {
					var err error
					if body, err = r.do(c, body); err != nil {
						werr.CompareAndSwap(nil, err)
					}
				}
			}(c)
		}
		wg.Wait()
		if e, ok := werr.Load().(error); ok {
			return nil, fmt.Errorf("warm-up: %w", e)
		}
	}

	var before proc.Stat
	if cfg.ServerPID > 0 {
		var err error
		if before, err = proc.Read(cfg.ServerPID); err != nil {
			return nil, fmt.Errorf("server pid %d: %w", cfg.ServerPID, err)
		}
	}
	clientBefore := selfCPU()
	machineBefore, _ := proc.MachineCPU()
	start := time.Now()
	deadline := start.Add(cfg.Duration)
	samples := make([][]sample, len(clients))
	var wg sync.WaitGroup
	if cfg.Rate <= 0 {
		var left atomic.Int64
		left.Store(int64(cfg.Requests))
		for w, c := range clients {
			wg.Add(1)
			go func(w int, c *http.Client) {
				defer wg.Done()
				var body []byte
				for left.Add(-1) >= 0 && ctx.Err() == nil && time.Now().Before(deadline) {
					t0 := time.Now()
					var err error
					body, err = r.do(c, body)
					samples[w] = append(samples[w], sample{time.Since(t0), err})
				}
			}(w, c)
		}
	} else {
		interval := time.Duration(float64(time.Second) / cfg.Rate)
		queue := make(chan time.Time, min(cfg.Requests, 100_000))
		for w, c := range clients {
			wg.Add(1)
			go func(w int, c *http.Client) {
				defer wg.Done()
				var body []byte
				for scheduled := range queue {
					var err error
					body, err = r.do(c, body)
					samples[w] = append(samples[w], sample{time.Since(scheduled), err})
				}
			}(w, c)
		}
		// The schedule is fixed in advance: request i is due at start + i*interval whether or
		// not earlier ones have been answered.
		for i := 0; i < cfg.Requests; i++ {
			due := start.Add(time.Duration(i) * interval)
			if due.After(deadline) || ctx.Err() != nil {
				break
			}
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
			queue <- due
		}
		close(queue)
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.ClientCPU = selfCPU() - clientBefore
	machineAfter, _ := proc.MachineCPU()
	if cfg.ServerPID > 0 {
		after, err := proc.Read(cfg.ServerPID)
		if err != nil {
			return nil, fmt.Errorf("server pid %d: %w", cfg.ServerPID, err)
		}
		res.ServerCPU = after.CPU - before.CPU
		res.ServerRSS, res.ServerHWM = after.RSS, after.HWM
	}
	if machineAfter > 0 {
		other := machineAfter - machineBefore - res.ClientCPU - res.ServerCPU
		res.OtherCPU = max(0, float64(other)/(float64(res.Elapsed)*float64(runtime.NumCPU())))
	}
	var lat []time.Duration
	for _, ss := range samples {
		for _, s := range ss {
			if s.err != nil {
				res.Errors++
				if res.FirstError == "" {
					res.FirstError = s.err.Error()
				}
				continue
			}
			lat = append(lat, s.latency)
		}
	}
	res.Requests = len(lat) + res.Errors
	if p, ok := r.proto.Load().(string); ok {
		res.Proto = p
	}
	if res.Requests > 0 {
		res.Throughput = float64(res.Requests) / res.Elapsed.Seconds()
		if res.ServerCPU > 0 {
			res.CPUPerAdmission = res.ServerCPU / time.Duration(res.Requests)
		}
	}
	if len(lat) > 0 {
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
		res.P50, res.P90, res.P99, res.Max = q(0.50), q(0.90), q(0.99), lat[len(lat)-1]
	}
	return res, nil
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
