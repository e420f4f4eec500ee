// Package worker is the Go SDK for Avtomatika workers: programs that take
// tasks from one or more orchestrators over the RXON worker protocol, run
// them, and report progress and results.
//
// A worker is the client side of the protocol. It registers its skills,
// price and hardware, sends heartbeats, long-polls for tasks while it has
// free capacity, runs the matching Handler, and posts the result, asking
// with it for the next task when the finished task's slot may take one (an
// extension of the protocol that saves a poll per task under load). Every
// registration, heartbeat, result and event is signed (HMAC-SHA256 over
// canonical JSON, see package protocol) with the worker's master token.
//
//	w, err := worker.New(worker.Config{
//		ID:                 "gpu-worker-01",
//		Token:              os.Getenv("WORKER_TOKEN"),
//		Orchestrators:      []worker.Orchestrator{{URL: "http://localhost:8080"}},
//		MaxConcurrentTasks: 2,
//	})
//	if err != nil { ... }
//	w.Handle("transcode_video", transcode, worker.Price(0.0005), worker.OutputStatuses("needs_review"))
//	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
//	defer stop()
//	err = w.Run(ctx) // until SIGINT/SIGTERM, then a graceful shutdown
//
// ConfigFromEnv reads the environment variables of the upstream Python SDK
// (WORKER_ID, WORKER_TOKEN, ORCHESTRATOR_URL, ORCHESTRATORS_CONFIG,
// COST_PER_SKILL, MAX_CONCURRENT_TASKS, HEARTBEAT_INTERVAL, WORKER_PORT, ...)
// into a Config that code may adjust before New.
//
// # Handlers
//
// A Handler receives a context and the Task. It reads its parameters with
// Task.Params or Task.Decode, may report progress with Task.SendProgress and
// custom events with Task.SendEvent, and returns a Result (Data, Metadata,
// and an optional custom Status) or an error:
//
//   - worker.Permanent(err), worker.InvalidInput(err), worker.Security(err),
//     worker.ResourceExhausted(err), ... (or a *TaskError) choose the protocol
//     error code; a plain error is TRANSIENT_ERROR, which the orchestrator
//     retries; a panic is TRANSIENT_ERROR "panic: ...".
//   - The context is cancelled when the orchestrator cancels the task (a
//     cancel_task WebSocket command or a heartbeat answer); the task is then
//     reported "cancelled" whatever the handler returns.
//   - A task whose type no handler serves fails with PERMANENT_ERROR
//     "Unsupported skill: <type>".
//
// # Capacity
//
// At most Config.MaxConcurrentTasks tasks run at once; Limit caps one skill
// type further, and Config.CapacityChecker can veto skills dynamically. The
// worker reports its status in heartbeats: "idle" while it can take tasks
// (only idle workers get new ones), "busy" when every skill is at its limit,
// "full" at MaxConcurrentTasks, and "offline" once shutdown begins. It polls
// only while idle.
//
// # Resilience
//
// Registration is retried with exponential back-off (RetryDelay doubling up
// to RetryMaxDelay, with jitter); polling starts after the first successful
// registration. A heartbeat or poll answered with 404 (or an
// "unauthorized"/"not found" auth error) makes the worker register again.
// Poll errors back off from PollErrorDelay up to PollBackoffMax. Results are
// re-signed and retried on network errors, 408, 429 and 5xx up to
// ResultMaxRetries attempts, and never retried after an "ignored" answer or
// another 4xx. A 429 waits for its Retry-After, or at least RateLimitFloor.
//
// # Several orchestrators
//
// With several Orchestrators the worker registers and heartbeats with each
// independently, polls them according to Config.Mode (Waterfall,
// RoundRobin, Failover), and always sends a task's result and events to the
// orchestrator that delivered it.
//
// # Hardware
//
// Resources left at zero are detected when Run starts: CPU cores, memory
// from /proc/meminfo, and GPUs from nvidia-smi when it is on PATH (a missing
// or failing nvidia-smi means no GPU). GPUs are reported as devices of type
// "gpu" and as resources.properties.gpu_info {model, vram_gb} and gpu_count,
// which task requirements such as {"gpu_info": {"vram_gb": 4}} match.
// Declared values (Config.Resources, or CPU_CORES, RAM_GB, GPU_MODEL,
// GPU_VRAM_GB, WORKER_DEVICES) win over detection.
//
// # Files and blob storage
//
// With blob storage (Config.Blobs, Config.S3 / S3_ENDPOINT_URL, or a local
// folder shared with the orchestrator, Config.BlobDir / BLOB_DIR), every
// s3:// string in a task's params is downloaded into the task's folder,
// <TaskFilesDir>/<task_id>, before the handler runs and replaced by its
// local path (a URI ending in "/" becomes a folder); params_metadata is
// checked first (INTEGRITY_MISMATCH_ERROR on another size or ETag), and
// values the orchestrator offloaded as JSON come back decoded. After the
// handler, result values that are paths of files or folders under
// TaskFilesDir are uploaded to s3://<bucket>/jobs/<job_id>/<name> and
// replaced by their URIs (data_metadata describes them), and result data
// over OffloadThreshold has its largest values stored as JSON objects.
// Task.Path and Task.Dir give paths in the task's folder, which is deleted
// when the task ends. A failed transfer fails the task (TRANSIENT_ERROR)
// with the file and the cause in the message.
//
// # Shutdown and health
//
// When Run's context ends the worker stops polling, sends a signed "offline"
// heartbeat to every orchestrator, lets running tasks finish and report for
// up to ShutdownTimeout, cancels the rest (they report "cancelled"), and
// returns. With Config.HealthAddr set, Run serves GET /health ("OK") there;
// HandleHTTP adds routes such as /metrics to the same server.
package worker
