package main

import (
	"fmt"
	"slices"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/avtomatika-ai/avtomatika-go/bench/harness"
)

// point is one rate-mode run of a series (workload and backend).
type point struct {
	series string
	result harness.Result
}

// drawChart plots p50 and p99 latency against offered load, one pair of
// lines per series, on a log latency axis so that both the flat part and
// the knee stay readable. The file's extension picks the format.
func drawChart(path string, points []point) error {
	p := plot.New()
	p.Title.Text = "Create-to-finished latency against offered load"
	p.X.Label.Text = "offered load (jobs/s)"
	p.Y.Label.Text = "latency (ms)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top, p.Legend.Left = true, true
	p.Add(plotter.NewGrid())

	var series []string
	for _, pt := range points {
		if !slices.Contains(series, pt.series) {
			series = append(series, pt.series)
		}
	}
	var lines []any
	for _, s := range series {
		var p50, p99 plotter.XYs
		for _, pt := range points {
			if pt.series != s {
				continue
			}
			p50 = append(p50, plotter.XY{X: pt.result.Offered, Y: msOf(pt.result.P50)})
			p99 = append(p99, plotter.XY{X: pt.result.Offered, Y: msOf(pt.result.P99)})
		}
		lines = append(lines, s+" p50", p50, s+" p99", p99)
	}
	if err := plotutil.AddLinePoints(p, lines...); err != nil {
		return err
	}
	if err := p.Save(8*vg.Inch, 5*vg.Inch, path); err != nil {
		return fmt.Errorf("save %s: %w", path, err)
	}
	return nil
}

// msOf converts to milliseconds, floored at 0.01 ms for the log axis.
func msOf(d time.Duration) float64 {
	return max(d.Seconds()*1000, 0.01)
}
