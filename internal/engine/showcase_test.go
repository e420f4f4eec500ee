package engine

import (
	"strings"
	"testing"

	"github.com/avtomatika-ai/avtomatika-go/examples/showcase/blueprints"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
)

// showcaseWorkers starts in-process stand-ins for the seed's three workers:
// a GPU worker (transcode_video, analyze_file), a reliable CPU worker and an
// unreliable one that fails its first task transiently.
func showcaseWorkers(en *env) (gpu, reliable, unreliable *fakeWorker) {
	analyze := func(worker string) func(p *protocol.TaskPayload) protocol.TaskResult {
		return func(p *protocol.TaskPayload) protocol.TaskResult {
			name, _ := p.Params["file_name"].(string)
			return protocol.TaskResult{Status: protocol.TaskSuccess, Data: map[string]any{"analysis": map[string]any{
				"file_name": name, "size_kb": 512.0, "codec": "h264", "location": worker,
			}}}
		}
	}
	gpu = en.start(&fakeWorker{id: "gpu-worker-01", skills: map[string]float64{"transcode_video": 0.0005, "analyze_file": 0.0001}, gpuGB: 16,
		handle: func(p *protocol.TaskPayload) protocol.TaskResult {
			if p.Type == "analyze_file" {
				return analyze("gpu-worker-01")(p)
			}
			switch p.Params["trigger"] {
			case "transient":
				return protocol.TaskResult{Status: protocol.TaskFailure, Error: &protocol.TaskError{Code: protocol.ErrTransient, Message: "GPU hiccup"}}
			case "security":
				return protocol.TaskResult{Status: protocol.TaskFailure, Error: &protocol.TaskError{Code: protocol.ErrSecurity, Message: "tampered input"}}
			case "review":
				return protocol.TaskResult{Status: "needs_review", Data: map[string]any{"reason": "Low quality source detected"}}
			}
			return protocol.TaskResult{Status: protocol.TaskSuccess, Data: map[string]any{"output_path": "/path/to/transcoded.mp4", "duration": 120.0}}
		}})
	reliable = en.start(&fakeWorker{id: "cpu-worker-02", skills: map[string]float64{"analyze_file": 0.0001}, handle: analyze("cpu-worker-02")})
	first := true
	unreliable = en.start(&fakeWorker{id: "cpu-worker-01", skills: map[string]float64{"analyze_file": 0.00005},
		handle: func(p *protocol.TaskPayload) protocol.TaskResult {
			if first {
				first = false
				return protocol.TaskResult{Status: protocol.TaskFailure, Error: &protocol.TaskError{Code: protocol.ErrTransient, Message: "Simulated unreliable hardware"}}
			}
			return analyze("cpu-worker-01")(p)
		}})
	return
}

func TestSeedBlueprints(t *testing.T) {
	t.Parallel()
	enrichmentRoll := 0.9 // above 0.3: the enrichment succeeds
	opts := blueprints.Options{TimeScale: 0.01, Rand: func() float64 { return enrichmentRoll }}
	en := newEnv(t, Config{}, blueprints.All(opts)...)
	showcaseWorkers(en)

	t.Run("client payload finishes with three analyses", func(t *testing.T) {
		id := en.create("full_showcase", map[string]any{"path": "/s3/bucket/input.mp4", "quality": "high", "use_advanced_dispatch": true}).ID
		j := en.waitEnd(id)
		if j.Status != protocol.StatusFinished || j.CurrentState != "finished" {
			t.Fatalf("job %s", summary(j))
		}
		summaryMap, _ := j.StateHistory["analysis_summary"].(map[string]any)
		if len(summaryMap) != 3 {
			t.Fatalf("analysis_summary = %v", j.StateHistory["analysis_summary"])
		}
		files := map[string]bool{}
		for _, a := range summaryMap {
			files[a.(map[string]any)["file_name"].(string)] = true
		}
		for _, f := range blueprints.AnalyzedFiles {
			if !files[f] {
				t.Errorf("no analysis of %s in %v", f, summaryMap)
			}
		}
		if !strings.HasPrefix(j.StateHistory["video_id"].(string), "vid_"+id[:8]) {
			t.Errorf("video_id = %v", j.StateHistory["video_id"])
		}
		if j.StateHistory["output_path"] != "/path/to/transcoded.mp4" || j.StateHistory["duration"] != 120.0 {
			t.Errorf("transcode result not in state_history: %v", j.StateHistory)
		}
		// The child job's record.
		var child *store.Job
		for k, v := range j.StateHistory {
			if strings.HasPrefix(k, "sub_job_") {
				res := v.(map[string]any)
				if res["outcome"] != "success" || res["status"] != "finished" {
					t.Errorf("sub job result %v", res)
				}
				child, _ = en.e.GetJob(en.ctx, strings.TrimSuffix(strings.TrimPrefix(k, "sub_job_"), "_result"))
			}
		}
		if child == nil || child.Blueprint != "metadata_enrichment" || child.ParentJobID != id || child.Status != protocol.StatusFinished ||
			child.InitialData["video_id"] != j.StateHistory["video_id"] {
			t.Fatalf("child record %+v", child)
		}
	})

	for _, tc := range []struct {
		name   string
		input  map[string]any
		status protocol.JobStatus
		state  string
	}{
		{"low quality fast path", map[string]any{"quality": "low"}, protocol.StatusFinished, "finished"},
		{"round robin", map[string]any{"use_round_robin": true}, protocol.StatusFinished, "finished"},
		{"best value", map[string]any{"use_reputation": true}, protocol.StatusFinished, "finished"},
		{"transient transcode failure", map[string]any{"trigger": "transient"}, protocol.StatusFailed, "transcoding_failed"},
		{"security error", map[string]any{"trigger": "security"}, protocol.StatusQuarantined, "dispatch_transcoding"},
		{"needs review", map[string]any{"trigger": "review"}, protocol.StatusFailed, "manual_review"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := en.waitEnd(en.create("full_showcase", tc.input).ID)
			if j.Status != tc.status || j.CurrentState != tc.state {
				t.Fatalf("got %s", summary(j))
			}
		})
	}

	t.Run("approval", func(t *testing.T) {
		for decision, want := range map[string]string{"approved": "finished", "rejected": "human_rejected"} {
			id := en.create("full_showcase", map[string]any{"needs_approval": true}).ID
			w := en.waitStatus(id, protocol.StatusWaitingForHuman)
			if w.ProgressMessage != "Please review the video before transcoding." {
				t.Fatalf("message %q", w.ProgressMessage)
			}
			if _, err := en.e.Approve(en.ctx, id, decision); err != nil {
				t.Fatal(err)
			}
			if j := en.waitEnd(id); j.CurrentState != want {
				t.Fatalf("%s: %s", decision, summary(j))
			}
		}
	})

	t.Run("enrichment failure", func(t *testing.T) {
		enrichmentRoll = 0.1
		defer func() { enrichmentRoll = 0.9 }()
		j := en.waitEnd(en.create("full_showcase", map[string]any{"quality": "low"}).ID)
		if j.Status != protocol.StatusFailed || j.CurrentState != "enrichment_failed" {
			t.Fatalf("got %s", summary(j))
		}
	})

	t.Run("periodic maintenance", func(t *testing.T) {
		j := en.waitEnd(en.create("periodic_maintenance", map[string]any{"source": "scheduler", "task_type": "cleanup"}).ID)
		report, _ := j.StateHistory["report"].(map[string]any)
		if j.Status != protocol.StatusFinished || report["cleaned"] != true {
			t.Fatalf("got %s %v", summary(j), j.StateHistory)
		}
	})
}
