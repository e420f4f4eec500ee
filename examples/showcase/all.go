package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/client"
	"github.com/avtomatika-ai/avtomatika-go/examples/showcase/receiver"
	"github.com/avtomatika-ai/avtomatika-go/examples/showcase/workers"
)

// runAll runs every part in one process, runs the client once, then keeps
// serving until ctx ends. Logs stay quiet (warnings) unless LOG_LEVEL says
// otherwise, so that the progress bar is readable.
func runAll(ctx context.Context, env showcaseEnv, stdout, stderr io.Writer) error {
	// The one-command demo must end "finished": unless told otherwise it
	// runs without random outcomes (the separate commands keep the seed's).
	if _, set := os.LookupEnv("DETERMINISTIC_WORKER"); !set {
		env.deterministicWorker = true
	}
	if _, set := os.LookupEnv("DETERMINISTIC_BLUEPRINT"); !set {
		env.deterministicBlueprint = true
	}
	// The console's queues and schedules pages need the admin token: a
	// fresh random one per run unless ADMIN_TOKEN names one (no admin
	// token that every copy of the showcase shares).
	if env.adminToken == "" {
		env.adminToken = "admin-" + rand.Text()
	}
	log := newLogger(stderr, env.logLevel("WARN"))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	goRun := func(name string, fn func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(); err != nil && ctx.Err() == nil {
				errc <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}

	rcv := receiver.New(env.webhookSecret, log)
	rln, err := listen(env.webhookPort, "WEBHOOK_PORT")
	if err != nil {
		return err
	}
	goRun("webhook receiver", func() error { return serveUntil(ctx, rln, rcv.Handler()) })

	ready := make(chan string, 1)
	goRun("orchestrator", func() error { return runOrchestrator(ctx, env, log, ready) })
	select {
	case <-ready:
	case err := <-errc:
		wg.Wait()
		return err
	case <-ctx.Done():
		wg.Wait()
		return ctx.Err()
	}
	for _, kind := range workers.Names {
		goRun("worker "+kind, func() error { return runWorker(ctx, env, kind, log, true) })
	}

	c, err := client.New(env.orchestratorURL, env.clientToken)
	if err != nil {
		return err
	}
	if err := waitWorkers(ctx, c, len(workers.Names)); err != nil {
		cancel()
		wg.Wait()
		return firstError(errc, err)
	}
	fmt.Fprintf(stdout, "Avtomatika showcase: orchestrator on %s, 3 workers, webhook receiver on :%d\n\n", env.orchestratorURL, env.webhookPort)
	job, err := runClient(ctx, env, stdout)
	if err != nil {
		cancel()
		wg.Wait()
		return firstError(errc, err)
	}
	if job.Status != "finished" {
		fmt.Fprintln(stdout, "\nThe job did not finish; the orchestrator keeps serving so that you can look around.")
	}
	if n, ok := rcv.Wait(job.ID, 10*time.Second); ok {
		sig := "signature verified"
		if !n.Verified {
			sig = "unsigned"
		}
		fmt.Fprintf(stdout, "\nWebhook received (%s): event=%s job=%s status=%s\n", sig, n.Payload.Event, n.Payload.JobID, n.Payload.Status)
	} else {
		fmt.Fprintln(stdout, "\nNo webhook arrived within 10 s.")
	}
	fmt.Fprintf(stdout, `
Still serving (Ctrl-C to stop):
  console    %[1]s/console/ (log in with the token %[3]s; admin token %[4]s for every client's jobs, queues and schedules)
  API docs   %[1]s/_public/docs
  status     %[1]s/_public/status
  metrics    %[1]s/_public/metrics
  webhooks   %[2]s
  CLI        go run ./cmd/avtomatika --token %[3]s jobs create /jobs/full_showcase --data '{"quality":"low"}' --watch
`, env.orchestratorURL, env.webhookURL, env.clientToken, env.adminToken)
	<-ctx.Done()
	wg.Wait()
	return firstError(errc, nil)
}

// waitWorkers waits until n workers have registered.
func waitWorkers(ctx context.Context, c *client.Client, n int) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if ws, err := c.Workers(ctx); err == nil && len(ws) >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the workers did not register within 30 s")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func firstError(errc chan error, fallback error) error {
	select {
	case err := <-errc:
		return err
	default:
		return fallback
	}
}
