package console_test

// The tests run the console on every backend, with blueprint graphs.
import (
	_ "github.com/avtomatika-ai/avtomatika-go/orchestrator/backends/graphviz"
	_ "github.com/avtomatika-ai/avtomatika-go/orchestrator/backends/postgres"
	_ "github.com/avtomatika-ai/avtomatika-go/orchestrator/backends/redis"
	_ "github.com/avtomatika-ai/avtomatika-go/orchestrator/backends/sqlite"
)
