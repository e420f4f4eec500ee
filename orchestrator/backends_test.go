package orchestrator_test

// The orchestrator's tests run it on every backend: Redis, SQLite and
// PostgreSQL history, S3.
import (
	_ "github.com/avtomatika-ai/avtomatika-go/orchestrator/backends/postgres"
	_ "github.com/avtomatika-ai/avtomatika-go/orchestrator/backends/redis"
	_ "github.com/avtomatika-ai/avtomatika-go/orchestrator/backends/s3"
	_ "github.com/avtomatika-ai/avtomatika-go/orchestrator/backends/sqlite"
)
