// Package projections is the read side of Turbo Lane: it folds job events
// into an embedded SQLite store (modernc.org/sqlite, pure Go) that answers the
// polling endpoint (one job by id), the per-user list with filters, sort and
// pagination, per-job stats and per-processor duration estimates. The view is
// a cache of the event log: it stores the last applied stream sequence in the
// same transaction as the rows it derived from it, resumes from there after a
// restart, and can always be emptied and rebuilt from sequence 1. It must not
// decide anything or write to the event log, must not know JetStream (it reads
// events through the small Source interface), and must never be the only copy
// of a fact: every row here has to be reproducible from the events alone.
package projections
