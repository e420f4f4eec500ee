package main

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	goredis "github.com/redis/go-redis/v9"

	"github.com/avtomatika-ai/avtomatika-go/bench/harness"
)

// asynqSystem runs asynq (hibiken/asynq) on database db of the Redis at
// redisURL, flushed before and after each run. tuned: what a user would
// set for latency; otherwise asynq's defaults except Concurrency.
func asynqSystem(name string, tuned bool, redisURL string, db int) system {
	return system{name: name, run: func(ctx context.Context, o harness.Options) (harness.Result, error) {
		return runAsynq(ctx, o, tuned, redisURL, db)
	}}
}

func runAsynq(ctx context.Context, o harness.Options, tuned bool, redisURL string, db int) (harness.Result, error) {
	ropts, err := goredis.ParseURL(redisURL)
	if err != nil {
		return harness.Result{}, err
	}
	ropts.DB = db
	// asynq's own default pool: 10 connections per GOMAXPROCS.
	ropts.PoolSize = 10 * runtime.GOMAXPROCS(0)
	cfg := asynq.Config{
		// As many handler goroutines as our Workers×Concurrency.
		Concurrency: o.Workers * o.Concurrency,
		Logger:      nopAsynqLogger{},
		LogLevel:    asynq.FatalLevel,
	}
	if tuned {
		// asynq polls Redis (no blocking pop): when the queues are empty its
		// single fetch loop sleeps TaskCheckInterval/2 + rand(TaskCheckInterval)
		// before it looks again; the default is 1 s. 1 ms is the lowest value
		// that still sleeps, at the cost of up to ~1,000 dequeue scripts a
		// second against an idle Redis: what a latency-minded user would pick.
		cfg.TaskCheckInterval = time.Millisecond
		// The same pool as our Redis store, so that 32 client goroutines
		// and 128 handlers need not wait for a connection.
		ropts.PoolSize = 128
		// RESP2: under RESP3 go-redis looks for push notifications
		// around every command, which neither system uses.
		ropts.Protocol = 2
	}

	// asynq's client and server, FLUSHDB and the fan-in counters share one
	// go-redis client, metered like our store's.
	rdb := goredis.NewClient(ropts)
	defer rdb.Close()
	meter := harness.NewRedisMeter(rdb)
	o.BeforeMeasure = func() { meter.Reset(ctx) }
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		return harness.Result{}, fmt.Errorf("flush redis db %d: %w", db, err)
	}
	defer rdb.FlushDB(context.Background())

	ends := harness.NewEnds()
	mux := asynq.NewServeMux()
	mux.HandleFunc("one-task", func(ctx context.Context, _ *asynq.Task) error {
		// Recorded as the handler returns: slightly in asynq's favour, which
		// marks the task done in Redis only afterwards.
		id, _ := asynq.GetTaskID(ctx)
		ends.Ended(id, time.Now(), true)
		return nil
	})
	mux.HandleFunc("noop", func(ctx context.Context, t *asynq.Task) error {
		// The fan-in, emulated with a counter: the tenth task to finish ends
		// the job (the counter is left for FLUSHDB).
		job := string(t.Payload())
		n, err := rdb.Incr(ctx, "fanin:"+job).Result()
		if err != nil {
			return err
		}
		if n == 10 {
			ends.Ended(job, time.Now(), true)
		}
		return nil
	})
	srv := asynq.NewServerFromRedisClient(rdb, cfg)
	if err := srv.Start(mux); err != nil {
		return harness.Result{}, err
	}
	defer srv.Shutdown()

	client := asynq.NewClientFromRedisClient(rdb)
	defer client.Close()
	var submit harness.Submit
	switch o.Workload {
	case "one-task":
		submit = func(ctx context.Context) (string, error) {
			id := uuid.NewString()
			_, err := client.EnqueueContext(ctx, asynq.NewTask("one-task", nil), asynq.TaskID(id))
			return id, err
		}
	case "fanout-10":
		// asynq has no batch or pipelined enqueue: ten EnqueueContext calls,
		// one after another (ten round trips, each a Lua script).
		submit = func(ctx context.Context) (string, error) {
			job := uuid.NewString()
			for range 10 {
				if _, err := client.EnqueueContext(ctx, asynq.NewTask("noop", []byte(job))); err != nil {
					return "", err
				}
			}
			return job, nil
		}
	default:
		return harness.Result{}, fmt.Errorf("asynq: workload %q not implemented (one-task, fanout-10)", o.Workload)
	}
	res, err := harness.Drive(ctx, o, submit, ends)
	if err == nil {
		meter.Measure(ctx, &res)
	}
	return res, err
}

// nopAsynqLogger discards asynq's log output.
type nopAsynqLogger struct{}

func (nopAsynqLogger) Debug(...any) {}
func (nopAsynqLogger) Info(...any)  {}
func (nopAsynqLogger) Warn(...any)  {}
func (nopAsynqLogger) Error(...any) {}
func (nopAsynqLogger) Fatal(...any) {}
