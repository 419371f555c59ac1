package certs

import (
	"context"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/webhook"
)

type fakeServer struct {
	webhook.Server
	started chan struct{}
}

func (f *fakeServer) Start(ctx context.Context) error {
	close(f.started)
	<-ctx.Done()
	return nil
}

func TestGateWebhookServer(t *testing.T) {
	// Waits for ready.
	ready := make(chan struct{})
	var r <-chan struct{} = ready
	f := &fakeServer{started: make(chan struct{})}
	g := GateWebhookServer(f, &r)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = g.Start(ctx) }()
	select {
	case <-f.started:
		t.Fatal("server started before the certificates were ready")
	case <-time.After(200 * time.Millisecond):
	}
	close(ready)
	select {
	case <-f.started:
	case <-time.After(5 * time.Second):
		t.Fatal("server not started after ready was closed")
	}

	// Nil channel (self-managed mode off): starts at once.
	var none <-chan struct{}
	f2 := &fakeServer{started: make(chan struct{})}
	go func() { _ = GateWebhookServer(f2, &none).Start(ctx) }()
	select {
	case <-f2.started:
	case <-time.After(5 * time.Second):
		t.Fatal("server with nil gate did not start")
	}

	// Context cancelled while waiting: returns without starting.
	never := make(chan struct{})
	var nr <-chan struct{} = never
	f3 := &fakeServer{started: make(chan struct{})}
	ctx3, cancel3 := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- GateWebhookServer(f3, &nr).Start(ctx3) }()
	cancel3()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Start = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Start did not return after cancel")
	}
	select {
	case <-f3.started:
		t.Error("server started although ready never closed")
	default:
	}
}
