// Package harness runs Avtomatika's benchmark workloads: an orchestrator on
// a loopback port, SDK workers and API clients over real HTTP, measuring
// throughput and create-to-finished latency.
package harness

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
)

// Workloads names the standard workloads in a stable order; fanout-N
// works for any width N (fanout-1000, fanout-10000).
var Workloads = []string{"one-task", "fanout-10", "no-task", "chain-5"}

// fanOutWidth returns N of a fanout-N workload.
func fanOutWidth(workload string) (int, bool) {
	n, err := strconv.Atoi(strings.TrimPrefix(workload, "fanout-"))
	return n, strings.HasPrefix(workload, "fanout-") && err == nil && n > 0
}

// KnownWorkload reports whether a workload name is runnable.
func KnownWorkload(w string) bool {
	_, fan := fanOutWidth(w)
	return fan || slices.Contains(Workloads, w)
}

// blueprintFor returns the blueprint of a workload; its endpoint is
// /jobs/<workload>.
func blueprintFor(workload string) (*blueprint.Blueprint, error) {
	if !KnownWorkload(workload) {
		return nil, fmt.Errorf("unknown workload %q (known: %v, or fanout-N for any N)", workload, Workloads)
	}
	width, fan := fanOutWidth(workload)
	bp := blueprint.New(workload).Endpoint("v1", "/jobs/"+workload)
	noop := blueprint.Task{Type: "noop"}
	switch {
	case workload == "one-task":
		bp.Start("start", func(c *blueprint.Context) error { return c.Dispatch(noop) }, blueprint.On("success", "finished"))
	case fan:
		bp.Start("start", func(c *blueprint.Context) error {
			tasks := make([]blueprint.Task, width)
			for i := range tasks {
				tasks[i] = noop
			}
			return c.DispatchParallel(tasks)
		}, blueprint.FanIn("join"))
		bp.Aggregator("join", func(c *blueprint.Context) error { return c.GoTo("finished") }, blueprint.To("finished"))
	case workload == "no-task":
		bp.Start("start", func(c *blueprint.Context) error { return c.GoTo("middle") }, blueprint.To("middle"))
		bp.State("middle", func(c *blueprint.Context) error { return c.GoTo("finished") }, blueprint.To("finished"))
	case workload == "chain-5":
		for i := range 5 {
			name, next := fmt.Sprintf("step%d", i), fmt.Sprintf("step%d", i+1)
			if i == 4 {
				next = "finished"
			}
			h := func(c *blueprint.Context) error { return c.Dispatch(noop) }
			if i == 0 {
				bp.Start(name, h, blueprint.On("success", next))
			} else {
				bp.State(name, h, blueprint.On("success", next))
			}
		}
	}
	bp.End("finished", nil)
	return bp, nil
}

// tasksPerJob is how many worker tasks one job of the workload runs.
func tasksPerJob(workload string) int {
	if n, fan := fanOutWidth(workload); fan {
		return n
	}
	switch workload {
	case "one-task":
		return 1
	case "chain-5":
		return 5
	}
	return 0
}

// initialData returns an initial_data of about n bytes of JSON: fields
// of 64-character strings; nil when n is 0.
func initialData(n int) map[string]any {
	if n <= 0 {
		return nil
	}
	const field = 64 + len(`"field-0000":"",`)
	data := make(map[string]any, n/field+1)
	for i := range n/field + 1 {
		data[fmt.Sprintf("field-%04d", i)] = strings.Repeat(string(rune('a'+i%26)), 64)
	}
	return data
}
