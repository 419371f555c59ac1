package certs

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/webhook"
)

// GateWebhookServer wraps srv so that its Start waits until *ready is closed.
//
// Why it is needed: the manager starts webhook servers before caches and
// controllers, and controller-runtime's server fails at once if tls.crt is
// missing, so with --self-signed-certs the server would start before Setup's
// rotator has written the first certificate. ready is a pointer because the
// manager (and so its WebhookServer option) must exist before Setup can be
// called:
//
//	var certsReady <-chan struct{}
//	mgr, _ := ctrl.NewManager(cfg, ctrl.Options{
//		WebhookServer: certs.GateWebhookServer(webhook.NewServer(webhook.Options{CertDir: dir}), &certsReady),
//	})
//	certsReady, err = certs.Setup(mgr, opts, dir)
//
// A nil *ready at Start (self-managed mode disabled) starts srv immediately.
// The wrapper is still a webhook.Server, so the manager keeps it in its
// webhook group, without leader election, on every replica.
func GateWebhookServer(srv webhook.Server, ready *<-chan struct{}) webhook.Server {
	return &gatedServer{Server: srv, ready: ready}
}

type gatedServer struct {
	webhook.Server
	ready *<-chan struct{}
}

func (g *gatedServer) Start(ctx context.Context) error {
	if g.ready != nil && *g.ready != nil {
		select {
		case <-*g.ready:
		case <-ctx.Done():
			return nil
		}
	}
	return g.Server.Start(ctx)
}
