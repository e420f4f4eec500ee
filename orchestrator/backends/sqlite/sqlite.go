// Package sqlite links the SQLite history database (package history/sqlite,
// pure Go) into the orchestrator: import it for its side effect to let
// Config.HistoryURI (HISTORY_DATABASE_URI) name an SQLite file, as the
// default of ConfigFromEnv does.
//
//	import _ "github.com/avtomatika-ai/avtomatika-go/orchestrator/backends/sqlite"
package sqlite

import (
	"context"

	"github.com/avtomatika-ai/avtomatika-go/history"
	"github.com/avtomatika-ai/avtomatika-go/history/sqlite"
	"github.com/avtomatika-ai/avtomatika-go/internal/backend"
)

func init() { backend.Register(backend.SQLite, backend.Backend{OpenHistory: open}) }

func open(ctx context.Context, t backend.HistoryTarget) (history.Store, error) {
	return sqlite.Open(ctx, t.Path)
}
