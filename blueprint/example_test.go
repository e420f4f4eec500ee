package blueprint_test

import (
	"fmt"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
)

func Example() {
	bp := blueprint.New("resize_image").Endpoint("v1", "/jobs/resize")

	bp.Start("start", func(c *blueprint.Context) error {
		return c.GoTo("resize")
	}, blueprint.To("resize"))

	// Small images skip the worker.
	bp.State("resize", func(c *blueprint.Context) error {
		return c.GoTo("finished")
	}, blueprint.When(`initial_data.width <= 64`), blueprint.To("finished"))

	// Everything else goes to the cheapest worker with the "resize" skill.
	bp.State("resize", func(c *blueprint.Context) error {
		return c.Dispatch(blueprint.Task{
			Type:   "resize",
			Params: map[string]any{"url": c.Input("url"), "width": c.Input("width")},
		})
	}, blueprint.Using(blueprint.Cheapest),
		blueprint.On("success", "finished"), blueprint.On("failure", "resize_failed"))

	bp.End("finished", nil)
	bp.End("resize_failed", nil)

	if err := bp.Validate(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(bp.Mermaid())
	// Output:
	// stateDiagram-v2
	//     state "start" as s0
	//     state "resize" as s1
	//     state "finished" as s2
	//     state "resize_failed" as s3
	//     [*] --> s0
	//     s0 --> s1
	//     s1 --> s2 : when initial_data.width <= 64
	//     s1 --> s2 : success
	//     s1 --> s3 : failure
	//     note right of s1 : strategy cheapest
	//     s2 --> [*]
	//     s3 --> [*]
}
