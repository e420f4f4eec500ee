package console

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"slices"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/internal/api"
	"github.com/avtomatika-ai/avtomatika-go/internal/figures"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
)

// Charts: the pages carry their data in a data-chart attribute (JSON), and
// console.js draws it with uPlot (static/uplot); no inline script, as the
// Content-Security-Policy wants.

// chart is what console.js draws: X in Unix seconds, one line per series
// (its colour a CSS variable of console.css: run, ok, bad, warn, accent).
type chart struct {
	Title  string   `json:"title"`
	Unit   string   `json:"unit"`
	X      []int64  `json:"x"`
	Series []series `json:"series"`
	Min    *float64 `json:"min,omitempty"` // fixed Y range, when set
	Max    *float64 `json:"max,omitempty"`
	Steps  bool     `json:"steps,omitempty"`  // a value holds until the next
	Points bool     `json:"points,omitempty"` // mark each value (sparse data)
}

type series struct {
	Label  string     `json:"label"`
	Color  string     `json:"color"`
	Values []*float64 `json:"values"` // nil: no value
}

// JSON is the chart as the data-chart attribute carries it.
func (c chart) JSON() string {
	b, err := json.Marshal(c)
	if err != nil {
		return "{}"
	}
	return string(b)
}

func num(f float64) *float64 { return &f }

// hourCharts are the queues page's charts of the last hour: jobs created,
// finished and failed per minute, and the mean time tasks waited in their
// queue before a worker picked them up.
func hourCharts(minutes []figures.Minute) (jobs, latency chart) {
	jobs = chart{Title: "Jobs per minute, last hour", Unit: "jobs", Series: []series{
		{Label: "created", Color: "run"}, {Label: "finished", Color: "ok"}, {Label: "failed", Color: "bad"}}}
	latency = chart{Title: "Dispatch latency (mean wait in queue), last hour", Unit: "ms", Points: true, Series: []series{{Label: "mean wait", Color: "warn"}}}
	for _, m := range minutes {
		jobs.X = append(jobs.X, m.At.Unix())
		latency.X = append(latency.X, m.At.Unix())
		jobs.Series[0].Values = append(jobs.Series[0].Values, num(float64(m.Created)))
		jobs.Series[1].Values = append(jobs.Series[1].Values, num(float64(m.Finished)))
		jobs.Series[2].Values = append(jobs.Series[2].Values, num(float64(m.Failed)))
		var wait *float64
		if m.Started > 0 {
			wait = num(math.Round(m.WaitMS*10) / 10)
		}
		latency.Series[0].Values = append(latency.Series[0].Values, wait)
	}
	return jobs, latency
}

// hourTotals sums the last hour for the page's text (and readers without
// the chart).
type hourTotals struct {
	Created, Finished, Failed, Started int64
	WaitMS                             float64
}

func totals(minutes []figures.Minute) hourTotals {
	var t hourTotals
	var wait float64
	for _, m := range minutes {
		t.Created += m.Created
		t.Finished += m.Finished
		t.Failed += m.Failed
		t.Started += m.Started
		wait += m.WaitMS * float64(m.Started)
	}
	if t.Started > 0 {
		t.WaitMS = math.Round(wait/float64(t.Started)*10) / 10
	}
	return t
}

// reputationChart is a worker's reputation over its recorded changes,
// ending with its value now.
func reputationChart(samples []store.Sample, now float64, at time.Time) chart {
	c := chart{Title: "Reputation", Unit: "", Min: num(0), Max: num(1), Steps: true, Series: []series{{Label: "reputation", Color: "accent"}}}
	for _, s := range samples {
		c.X = append(c.X, s.At.Unix())
		c.Series[0].Values = append(c.Series[0].Values, num(s.Value))
	}
	if len(c.X) == 0 || at.Unix() > c.X[len(c.X)-1] {
		c.X = append(c.X, at.Unix())
		c.Series[0].Values = append(c.Series[0].Values, num(now))
	}
	return c
}

// worker serves a worker's page: its facts, its reputation's history as a
// chart and a table, and (admin) its tasks in progress.
func (c *Console) worker(w http.ResponseWriter, r *http.Request, v *viewer) {
	ctx := r.Context()
	wi, err := c.workerInfo(ctx, v, r.PathValue("id"))
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			c.render(w, r, http.StatusNotFound, "notfound", v, map[string]any{"What": "Worker " + r.PathValue("id")})
			return
		}
		c.fail(w, r, v, err)
		return
	}
	samples, err := c.opts.Engine.Store().Samples(ctx, figures.ReputationSeries(wi.WorkerID))
	if err != nil {
		c.fail(w, r, v, err)
		return
	}
	recent := slices.Clone(samples)
	slices.Reverse(recent)
	if len(recent) > 20 {
		recent = recent[:20]
	}
	data := map[string]any{"Worker": wi, "Chart": reputationChart(samples, wi.Reputation, time.Now()), "Samples": recent}
	if r.URL.Query().Get("fragment") == "panel" {
		data["Fragment"] = "workerpanel"
	}
	c.render(w, r, http.StatusOK, "worker", v, data)
}

// workerInfo is one worker as the viewer may see it.
func (c *Console) workerInfo(ctx context.Context, v *viewer, id string) (protocol.WorkerInfo, error) {
	ws, err := c.opts.Engine.ListWorkers(ctx)
	if err != nil {
		return protocol.WorkerInfo{}, err
	}
	view := api.ClientWorkerView
	if v.Admin {
		view = api.WorkerView
	}
	for _, wi := range ws {
		if wi.ID == id {
			return view(wi), nil
		}
	}
	return protocol.WorkerInfo{}, store.ErrNotFound
}
