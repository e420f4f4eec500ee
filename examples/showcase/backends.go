package main

// The showcase's orchestrator links every backend, so that its environment
// can choose any of them, and Graphviz for the console's blueprint graphs.
import (
	_ "github.com/avtomatika-ai/avtomatika-go/orchestrator/backends/graphviz" // the console's blueprint graphs (SVG)
	_ "github.com/avtomatika-ai/avtomatika-go/orchestrator/backends/postgres" // HISTORY_DATABASE_URI=postgres://...
	_ "github.com/avtomatika-ai/avtomatika-go/orchestrator/backends/redis"    // REDIS_URL, Config.RedisURL
	_ "github.com/avtomatika-ai/avtomatika-go/orchestrator/backends/s3"       // S3_ENDPOINT_URL, Config.S3
	_ "github.com/avtomatika-ai/avtomatika-go/orchestrator/backends/sqlite"   // HISTORY_DATABASE_URI=sqlite:PATH
)
