package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// ListenAndServe starts the orchestrator if needed and serves the API on
// Config.Addr until ctx ends, then shuts down gracefully.
func (o *Orchestrator) ListenAndServe(ctx context.Context) error {
	return o.ListenAndServeAt(ctx, o.cfg.Addr)
}

// ListenAndServeAt is ListenAndServe on another address.
func (o *Orchestrator) ListenAndServeAt(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	return o.Serve(ctx, ln)
}

// Serve is ListenAndServe on a listener of your own. On shutdown, new
// connections are refused, worker WebSockets get "going away", long polls are
// released, and in-flight requests and job steps get ShutdownTimeout to
// finish.
func (o *Orchestrator) Serve(ctx context.Context, ln net.Listener) error {
	o.mu.Lock()
	started := o.started
	o.mu.Unlock()
	if !started {
		if err := o.Start(); err != nil {
			ln.Close()
			return err
		}
	}
	srv := &http.Server{
		Handler:           o.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          nil,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	o.cfg.Logger.Info("orchestrator listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		_ = o.Stop(context.Background())
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	o.cfg.Logger.Info("orchestrator shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), o.cfg.ShutdownTimeout)
	defer cancel()
	stopErr := o.Stop(sctx) // releases long polls, so Shutdown does not wait for them
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return stopErr
}
