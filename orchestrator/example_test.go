package orchestrator_test

import (
	"context"
	"fmt"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blueprint"
	"github.com/avtomatika-ai/avtomatika-go/orchestrator"
)

func Example() {
	greet := blueprint.New("greet")
	greet.Start("start", func(c *blueprint.Context) error {
		if err := c.Set("greeting", fmt.Sprintf("hello, %v", c.Input("name"))); err != nil {
			return err
		}
		return c.GoTo("finished")
	}, blueprint.To("finished"))
	greet.End("finished", nil)

	o, err := orchestrator.New(orchestrator.Config{})
	if err != nil {
		panic(err)
	}
	if err := o.Register(greet); err != nil {
		panic(err)
	}
	if err := o.Start(); err != nil {
		panic(err)
	}
	defer o.Stop(context.Background())

	ctx := context.Background()
	job, err := o.CreateJob(ctx, "greet", map[string]any{"name": "world"})
	if err != nil {
		panic(err)
	}
	for !job.Status.Terminal() {
		time.Sleep(time.Millisecond)
		job, _ = o.Job(ctx, job.ID)
	}
	fmt.Println(job.Status, job.StateHistory["greeting"])
	// Output: finished hello, world
}
