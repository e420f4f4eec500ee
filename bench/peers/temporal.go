package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/temporal"
	"go.temporal.io/server/temporaltest"

	"github.com/avtomatika-ai/avtomatika-go/bench/harness"
)

// temporalSystem runs Temporal's in-process test server (temporaltest: all
// four services in this process, state in an in-memory SQLite database, one
// history shard), a fresh one for each run, with one SDK worker. tuned: what
// a user would set for latency; otherwise the SDK's defaults except the
// activity slots.
func temporalSystem(name string, tuned bool) system {
	return system{name: name, run: func(ctx context.Context, o harness.Options) (harness.Result, error) {
		return runTemporal(ctx, o, tuned)
	}}
}

func runTemporal(ctx context.Context, o harness.Options, tuned bool) (res harness.Result, err error) {
	if o.Workload != "one-task" && o.Workload != "fanout-10" {
		return res, fmt.Errorf("temporal: workload %q not implemented (one-task, fanout-10)", o.Workload)
	}
	quiet := tlog.NewStructuredLogger(slog.New(slog.DiscardHandler))
	wopts := worker.Options{
		// As many activity slots as our Workers×Concurrency. Workflow task
		// slots stay at the default (1,000): workflow code is the orchestration
		// logic, which is not bounded on our side either.
		MaxConcurrentActivityExecutionSize: o.Workers * o.Concurrency,
	}
	var startOpts client.StartWorkflowOptions
	if tuned {
		// More long polls in flight (the default is 2 of each), so that a new
		// task finds a waiting poller instead of queueing in matching.
		wopts.MaxConcurrentWorkflowTaskPollers = 16
		wopts.MaxConcurrentActivityTaskPollers = 16
		// Eager workflow start: the first workflow task comes back in the
		// StartWorkflowExecution response to this process's worker, skipping
		// matching (enabled on the server by default; opt-in on the client,
		// experimental). Eager activity dispatch is on by default in both.
		startOpts.EnableEagerStart = true
	}
	serverOpts := []temporaltest.TestServerOption{
		temporaltest.WithBaseClientOptions(client.Options{Logger: quiet}),
		temporaltest.WithBaseWorkerOptions(wopts),
	}
	if tuned {
		// Server side, replacing temporaltest's own dynamic config: one
		// partition per task queue instead of four (one worker process
		// needs no more, and a task then never waits on a partition without
		// a poller or for forwarding between partitions); and without
		// temporaltest's system.forceSearchAttributesCacheRefreshOnRead,
		// a test-only setting that reads the search attributes from the
		// database on every use.
		serverOpts = append(serverOpts, temporaltest.WithBaseServerOptions(temporal.WithDynamicConfigClient(dynamicconfig.StaticClient{
			dynamicconfig.MatchingNumTaskqueueReadPartitions.Key():  1,
			dynamicconfig.MatchingNumTaskqueueWritePartitions.Key(): 1,
		})))
	}
	ts := temporaltest.NewServer(serverOpts...)
	defer func() {
		// TestServer.Stop logs a shutdown error through its *testing.T,
		// which is nil here.
		defer func() {
			if r := recover(); r != nil && err == nil {
				err = fmt.Errorf("temporal: stop: %v", r)
			}
		}()
		ts.Stop()
	}()

	taskQueue := "bench-" + o.Workload
	ts.NewWorker(taskQueue, func(r worker.Registry) {
		r.RegisterWorkflowWithOptions(oneTaskWorkflow, workflow.RegisterOptions{Name: "one-task"})
		r.RegisterWorkflowWithOptions(fanoutWorkflow, workflow.RegisterOptions{Name: "fanout-10"})
		r.RegisterActivityWithOptions(noopActivity, activity.RegisterOptions{Name: "noop"})
	})
	c := ts.GetDefaultClient()

	startOpts.TaskQueue = taskQueue
	ends := harness.NewEnds()
	submit := func(ctx context.Context) (string, error) {
		opts := startOpts
		opts.ID = uuid.NewString()
		run, err := c.ExecuteWorkflow(ctx, opts, o.Workload)
		if err != nil {
			return "", err
		}
		go func() {
			// The end is when the client learns of it (a long poll on the
			// history): slightly against Temporal, whose server closed the
			// workflow a little earlier.
			err := run.Get(context.Background(), nil)
			ends.Ended(opts.ID, time.Now(), err == nil)
		}()
		return opts.ID, nil
	}
	return harness.Drive(ctx, o, submit, ends)
}

var temporalActivityOptions = workflow.ActivityOptions{StartToCloseTimeout: time.Minute}

// oneTaskWorkflow runs one no-op activity.
func oneTaskWorkflow(ctx workflow.Context) error {
	ctx = workflow.WithActivityOptions(ctx, temporalActivityOptions)
	return workflow.ExecuteActivity(ctx, "noop").Get(ctx, nil)
}

// fanoutWorkflow starts ten no-op activities at once and waits for all of
// them: Temporal's natural fan-in.
func fanoutWorkflow(ctx workflow.Context) error {
	ctx = workflow.WithActivityOptions(ctx, temporalActivityOptions)
	futures := make([]workflow.Future, 10)
	for i := range futures {
		futures[i] = workflow.ExecuteActivity(ctx, "noop")
	}
	for _, f := range futures {
		if err := f.Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

func noopActivity(context.Context) error { return nil }
