package serve

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/discovery"
)

// apiProbe tracks when the API server last answered. Decisions keep coming from the informer
// caches while it is away (the cache is the best knowledge there is); readiness fails only
// once the view is older than maxStaleness, so a brief API server restart does not take every
// replica out of the Service at once.
type apiProbe struct {
	client       discovery.ServerVersionInterface
	interval     time.Duration
	maxStaleness time.Duration
	log          logr.Logger
	lastContact  atomic.Int64 // unix nanoseconds
	reachable    atomic.Bool
	staleness    prometheus.GaugeFunc
}

func newAPIProbe(client discovery.ServerVersionInterface, maxStaleness time.Duration, log logr.Logger, reg prometheus.Registerer) *apiProbe {
	p := &apiProbe{client: client, interval: 2 * time.Second, maxStaleness: maxStaleness, log: log}
	p.lastContact.Store(time.Now().UnixNano())
	p.reachable.Store(true)
	p.staleness = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "runtimeguard_cluster_view_staleness_seconds",
		Help: "Seconds since the API server last answered; the cluster view may be this old.",
	}, func() float64 { return p.age().Seconds() })
	reg.MustRegister(p.staleness)
	return p
}

func (p *apiProbe) age() time.Duration {
	return time.Since(time.Unix(0, p.lastContact.Load()))
}

// Start probes until ctx ends. It implements manager.Runnable.
func (p *apiProbe) Start(ctx context.Context) error {
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if _, err := p.client.ServerVersion(); err != nil {
			if p.reachable.Swap(false) {
				p.log.Info("API server unreachable; deciding from the cached cluster view", "error", err.Error())
			}
			continue
		}
		p.lastContact.Store(time.Now().UnixNano())
		if !p.reachable.Swap(true) {
			p.log.Info("API server reachable again")
		}
	}
}

// check is a readiness check: it fails once the view may be older than maxStaleness.
func (p *apiProbe) check(*http.Request) error {
	if age := p.age(); age > p.maxStaleness {
		return fmt.Errorf("API server unreachable for %s (more than --max-staleness %s): the cluster view may be stale", age.Round(time.Second), p.maxStaleness)
	}
	return nil
}
