// Package history is the orchestrator's audit trail: an append-only log of
// everything that happened to jobs and workers, and a table of the latest
// summary of every job, kept in a database that outlives the live store
// (store.Store expires terminal jobs; history keeps them).
//
// The pieces:
//
//   - Event is one thing that happened, with the time it happened (not the
//     time it was persisted) and a JSON snapshot of the relevant context.
//   - Store is a backend (history/sqlite, history/postgres, or Nop). Every
//     backend passes the conformance suite in history/historytest.
//   - Recorder sits in front of a Store: Record puts an event in a bounded
//     buffer and returns at once; one goroutine writes batches. A full buffer
//     blocks Record (back-pressure) instead of dropping events, and Close
//     writes everything recorded before it returns.
//   - history/historydb opens a Store from HISTORY_DATABASE_URI.
//   - LiveStores, which both backends implement, records the live store each
//     job lives in (Event.LiveStore) and when each live store was last seen,
//     so that orchestrators with their own live stores share one history
//     and still find the jobs of a live store that is gone.
//
// An event is acknowledged, that is durable, once a Flush that started after
// its Record returned has returned nil, or once its RecordSync has returned
// nil.
package history
