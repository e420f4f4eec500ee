// Package postgres links the PostgreSQL history database (package
// history/postgres) into the orchestrator: import it for its side effect to
// let Config.HistoryURI (HISTORY_DATABASE_URI) name a postgres:// URL.
//
//	import _ "github.com/avtomatika-ai/avtomatika-go/orchestrator/backends/postgres"
package postgres

import (
	"context"

	"github.com/avtomatika-ai/avtomatika-go/history"
	"github.com/avtomatika-ai/avtomatika-go/history/postgres"
	"github.com/avtomatika-ai/avtomatika-go/internal/backend"
)

func init() { backend.Register(backend.Postgres, backend.Backend{OpenHistory: open}) }

func open(ctx context.Context, t backend.HistoryTarget) (history.Store, error) {
	return postgres.Open(ctx, t.URL, postgres.Options{})
}
