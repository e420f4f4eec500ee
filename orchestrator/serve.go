package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/internal/api"
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

// Serve is ListenAndServe on a listener of your own. It applies the
// connection limits of the Config (MaxConnections, MaxConnectionsPerIP,
// RequestBodyTimeout). On shutdown, long polls
// are released (204) and worker WebSockets get "going away"; then new
// connections are refused and in-flight requests get ShutdownTimeout to
// finish; only then does the engine stop (job steps in progress get what is
// left of ShutdownTimeout), so that no request meets a stopped engine.
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
	// No ReadTimeout: it would cut long polls and WebSockets. Bodies have
	// their own deadline (RequestBodyTimeout), headers ReadHeaderTimeout,
	// and connections are counted by source address and in total.
	srv := &http.Server{
		Handler:           o.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          nil,
	}
	ln = api.Harden(srv, ln, api.Limits{
		MaxConnections: o.cfg.MaxConnections, MaxConnectionsPerIP: o.cfg.MaxConnectionsPerIP, BodyTimeout: o.cfg.RequestBodyTimeout,
	})
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
	o.closeHTTP() // releases long polls and live streams, which Shutdown would wait for
	shutErr := srv.Shutdown(sctx)
	if shutErr != nil {
		shutErr = fmt.Errorf("shutdown: %w", shutErr)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		shutErr = errors.Join(shutErr, err)
	}
	return errors.Join(shutErr, o.Stop(sctx))
}
