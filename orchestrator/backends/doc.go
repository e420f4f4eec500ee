// Package backends holds the orchestrator's optional backends, one package
// each. Package orchestrator links none of them: on its own it runs on the
// embedded defaults (the in-memory live store, a local blob folder, and no
// history database unless one is linked). A program enables a backend by
// importing its package for its side effect, as with database/sql drivers:
//
//	import (
//		_ "github.com/avtomatika-ai/avtomatika-go/orchestrator/backends/graphviz" // the console's blueprint graphs
//		_ "github.com/avtomatika-ai/avtomatika-go/orchestrator/backends/postgres" // HISTORY_DATABASE_URI=postgres://...
//		_ "github.com/avtomatika-ai/avtomatika-go/orchestrator/backends/redis"    // REDIS_URL
//		_ "github.com/avtomatika-ai/avtomatika-go/orchestrator/backends/s3"       // S3_ENDPOINT_URL
//		_ "github.com/avtomatika-ai/avtomatika-go/orchestrator/backends/sqlite"   // HISTORY_DATABASE_URI=sqlite:PATH
//	)
//
// A configuration that names a backend the program does not link
// (orchestrator.New, orchestrator.ConfigFromEnv) fails with an error that
// names the import to add.
package backends
