// Package blueprints holds the three blueprints of the showcase, exactly as
// the seed describes them: full_showcase (the main story), its child
// metadata_enrichment, and the scheduled periodic_maintenance.
package blueprints

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/examples/showcase/simulate"
)

// Options tune the blueprints for tests and demos.
type Options struct {
	// Deterministic removes randomness (the seed's DETERMINISTIC_BLUEPRINT):
	// metadata_enrichment then always succeeds.
	Deterministic bool
	// TimeScale multiplies the simulated work (0.5 s of enrichment, 0.2 s of
	// cleanup). Zero means 1; tests use a small value.
	TimeScale float64
	// Rand decides the 30% enrichment failures; nil uses math/rand.
	Rand func() float64
}

func (o Options) work(ctx context.Context, d time.Duration) error {
	return simulate.Sleep(ctx, d, o.TimeScale)
}

func (o Options) random() float64 {
	if o.Rand != nil {
		return o.Rand()
	}
	return rand.Float64()
}

// All returns the three blueprints.
func All(o Options) []*blueprint.Blueprint {
	return []*blueprint.Blueprint{FullShowcase(o), MetadataEnrichment(o), PeriodicMaintenance(o)}
}

// AnalyzedFiles are the files fan_out_analysis analyses in parallel.
var AnalyzedFiles = []string{"audio_track.aac", "video_track.h264", "subtitles.srt"}

// FullShowcase is the main blueprint, at POST /api/v1/jobs/full_showcase.
func FullShowcase(o Options) *blueprint.Blueprint {
	bp := blueprint.New("full_showcase").Endpoint("v1", "/jobs/full_showcase")
	bp.DataStore("user_prefs", blueprint.NewMemoryStore(map[string]any{"user-123": "dark_mode"}))

	bp.Start("start", func(c *blueprint.Context) error {
		id := c.JobID()
		if len(id) > 8 {
			id = id[:8]
		}
		if err := c.Set("video_id", "vid_"+id); err != nil {
			return err
		}
		c.Logger().Info("job started", "video_id", "vid_"+id)
		return c.GoTo("check_user_preferences")
	}, blueprint.To("check_user_preferences"))

	bp.State("check_user_preferences", func(c *blueprint.Context) error {
		user, _ := c.Input("user_id").(string)
		if user == "" {
			user = "default_user"
		}
		pref, found, err := c.Store("user_prefs").Get(c.Context(), user)
		if err != nil {
			return err
		}
		c.Logger().Info("user preference", "user_id", user, "preference", pref, "found", found)
		return c.GoTo("pre_processing_decision")
	}, blueprint.To("pre_processing_decision"))

	decision := "pre_processing_decision"
	bp.State(decision, func(c *blueprint.Context) error {
		c.Logger().Info("low quality: fast path straight to transcoding")
		return c.GoTo("dispatch_transcoding")
	}, blueprint.When(`initial_data.quality == 'low'`), blueprint.To("dispatch_transcoding"))
	bp.State(decision, func(c *blueprint.Context) error {
		return c.GoTo("awaiting_approval")
	}, blueprint.When(`initial_data.needs_approval == true`), blueprint.To("awaiting_approval"))
	for _, v := range []struct {
		cond, file string
		strategy   blueprint.Strategy
		task       func(*blueprint.Task)
	}{
		{`initial_data.use_round_robin == true`, "round_robin_test.txt", blueprint.RoundRobin, nil},
		{`initial_data.use_reputation == true`, "reputation_test.txt", blueprint.BestValue, nil},
		{`initial_data.use_advanced_dispatch == true`, "special_analysis.txt", blueprint.Cheapest, func(t *blueprint.Task) {
			t.Priority, t.MaxCost, t.Timeout = 10, 0.0002, 10*time.Second
		}},
	} {
		bp.State(decision, func(c *blueprint.Context) error {
			t := blueprint.Task{Type: "analyze_file", Params: map[string]any{"file_name": v.file}}
			if v.task != nil {
				v.task(&t)
			}
			return c.Dispatch(t)
		}, blueprint.When(v.cond), blueprint.Using(v.strategy),
			blueprint.On("success", "dispatch_transcoding"), blueprint.On("failure", "transcoding_failed"))
	}
	bp.State(decision, func(c *blueprint.Context) error {
		return c.GoTo("dispatch_transcoding")
	}, blueprint.To("dispatch_transcoding"))

	bp.State("awaiting_approval", func(c *blueprint.Context) error {
		return c.AwaitApproval("Please review the video before transcoding.")
	}, blueprint.On("approved", "dispatch_transcoding"), blueprint.On("rejected", "human_rejected"))

	bp.State("dispatch_transcoding", func(c *blueprint.Context) error {
		return c.Dispatch(blueprint.Task{
			Type:         "transcode_video",
			Params:       map[string]any{"input_path": c.Input("path"), "trigger": c.Input("trigger")},
			Requirements: map[string]any{"gpu_info": map[string]any{"vram_gb": 4}},
		})
	}, blueprint.On("success", "run_sub_blueprint"), blueprint.On("failure", "transcoding_failed"),
		blueprint.On("needs_review", "manual_review"))

	bp.State("run_sub_blueprint", func(c *blueprint.Context) error {
		var out struct {
			OutputPath string  `json:"output_path"`
			Duration   float64 `json:"duration"`
		}
		if r := c.LastResult(); r != nil {
			if err := r.Decode(&out); err != nil {
				return err
			}
		}
		c.Logger().Info("transcoding done", "output_path", out.OutputPath, "duration", out.Duration)
		return c.RunBlueprint("metadata_enrichment", map[string]any{"video_id": c.Get("video_id")})
	}, blueprint.Child("metadata_enrichment"),
		blueprint.On("success", "fan_out_analysis"), blueprint.On("failure", "enrichment_failed"))

	bp.State("fan_out_analysis", func(c *blueprint.Context) error {
		tasks := make([]blueprint.Task, len(AnalyzedFiles))
		for i, f := range AnalyzedFiles {
			tasks[i] = blueprint.Task{Type: "analyze_file", Params: map[string]any{"file_name": f}}
		}
		return c.DispatchParallel(tasks)
	}, blueprint.FanIn("aggregate_analysis_results"))

	bp.Aggregator("aggregate_analysis_results", func(c *blueprint.Context) error {
		summary := map[string]any{}
		for id, r := range c.Branches() {
			summary[id] = r.Data["analysis"]
		}
		if err := c.Set("analysis_summary", summary); err != nil {
			return err
		}
		c.Logger().Info("analysis aggregated", "files", len(summary))
		if c.Input("blob_report") == true {
			return c.GoTo("process_blobs")
		}
		return c.GoTo("finished")
	}, blueprint.To("finished", "process_blobs"))

	// process_blobs: the GPU worker writes a report file from the analysis
	// and the input files (s3:// URIs in initial_data.inputs, downloaded by
	// the worker SDK); the SDK uploads the report to blob storage and
	// state_history.report_path holds its s3:// URI, which the client can
	// download through the files API.
	bp.State("process_blobs", func(c *blueprint.Context) error {
		params := map[string]any{"video_id": c.Get("video_id"), "analysis_summary": c.Get("analysis_summary")}
		if in, ok := c.Input("inputs").([]any); ok {
			params["inputs"] = in
		}
		return c.Dispatch(blueprint.Task{Type: "process_blobs", Params: params})
	}, blueprint.On("success", "finished"), blueprint.On("failure", "report_failed"))

	logEnd := func(c *blueprint.Context) error {
		c.Logger().Info("job reached an end state", "state", c.State())
		return nil
	}
	bp.End("finished", logEnd)
	for _, s := range []string{"transcoding_failed", "enrichment_failed", "manual_review", "human_rejected", "report_failed"} {
		bp.End(s, logEnd, blueprint.AsFailed())
	}
	return bp
}

// MetadataEnrichment is the child blueprint of full_showcase. It works for
// about half a second and then fails 30% of the time, unless deterministic.
func MetadataEnrichment(o Options) *blueprint.Blueprint {
	bp := blueprint.New("metadata_enrichment")
	bp.Start("start", func(c *blueprint.Context) error {
		if err := o.work(c.Context(), 500*time.Millisecond); err != nil {
			return err
		}
		if !o.Deterministic && o.random() < 0.3 {
			c.Logger().Warn("metadata enrichment failed (simulated)", "video_id", c.Input("video_id"))
			return c.GoTo("sub_failed")
		}
		if err := c.Set("metadata", map[string]any{"video_id": c.Input("video_id"), "tags": []string{"showcase", "demo"}}); err != nil {
			return err
		}
		return c.GoTo("finished")
	}, blueprint.To("finished", "sub_failed"))
	bp.End("finished", nil)
	bp.End("sub_failed", nil, blueprint.AsFailed())
	return bp
}

// PeriodicMaintenance is started by the scheduler every minute.
func PeriodicMaintenance(o Options) *blueprint.Blueprint {
	bp := blueprint.New("periodic_maintenance")
	bp.Start("start", func(c *blueprint.Context) error {
		c.Logger().Info("maintenance: cleaning up", "source", c.Input("source"), "task_type", c.Input("task_type"))
		if err := o.work(c.Context(), 200*time.Millisecond); err != nil {
			return err
		}
		return c.GoTo("generate_report")
	}, blueprint.To("generate_report"))
	bp.State("generate_report", func(c *blueprint.Context) error {
		if err := c.Set("report", map[string]any{"cleaned": true, "generated_at": time.Now().UTC().Format(time.RFC3339)}); err != nil {
			return err
		}
		return c.GoTo("finished")
	}, blueprint.To("finished"))
	bp.End("finished", nil)
	return bp
}
