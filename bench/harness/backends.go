package harness

// The benchmark's History option names an SQLite or PostgreSQL database.
import (
	_ "github.com/avtomatika-ai/avtomatika-go/orchestrator/backends/postgres"
	_ "github.com/avtomatika-ai/avtomatika-go/orchestrator/backends/sqlite"
)
