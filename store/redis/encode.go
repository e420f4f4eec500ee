package redis

import (
	"strconv"

	"github.com/avtomatika-ai/avtomatika-go/internal/jsonappend"
	"github.com/avtomatika-ai/avtomatika-go/store"
)

// The records a commit writes are encoded by hand, field by field in the
// order json.Marshal writes them, to the same bytes, without reflection:
// every commit writes its job's header and the records it changed, and
// encoding/json's reflection took 7 % of a one-task job's process CPU on
// them (about 6 µs for the header of a finished one-task job). The header
// is encoded here; task records, queued tasks, results and dispatches by
// their store types (TaskRun, QueuedTask, Result and Dispatch, each with
// AppendJSON), all into one buffer a commit keeps (commitArgs.encode).
// Values of free shape (initial data, state history, results' data,
// policy, client params, blob metadata) still go through json.Marshal.
// The tests compare each encoder with json.Marshal on a record with every
// field set (jsonappendtest.Fill), so that a field added to a stored type
// and not to its encoder fails them.

// appendHeader appends a job header: a store.Job without its part
// records, as Job.Header returns it (part fields are not written).
func appendHeader(b []byte, j *store.Job) ([]byte, error) {
	var err error
	b = append(b, `{"id":`...)
	b = jsonappend.String(b, j.ID)
	b = append(b, `,"blueprint_name":`...)
	b = jsonappend.String(b, j.Blueprint)
	b = append(b, `,"status":`...)
	b = jsonappend.String(b, string(j.Status))
	b = append(b, `,"current_state":`...)
	b = jsonappend.String(b, j.CurrentState)
	b = append(b, `,"initial_data":`...)
	if b, err = jsonappend.Value(b, j.InitialData); err != nil {
		return nil, err
	}
	b = append(b, `,"state_history":`...)
	if b, err = jsonappend.Value(b, j.StateHistory); err != nil {
		return nil, err
	}
	b = append(b, `,"progress":`...)
	if b, err = jsonappend.Float(b, j.Progress); err != nil {
		return nil, err
	}
	b = jsonappend.OptString(b, `,"progress_message":`, j.ProgressMessage)
	b = jsonappend.OptString(b, `,"error_message":`, j.ErrorMessage)
	if j.Result != nil {
		b = append(b, `,"result":`...)
		if b, err = jsonappend.Value(b, j.Result); err != nil {
			return nil, err
		}
	}
	b = jsonappend.OptString(b, `,"parent_job_id":`, j.ParentJobID)
	b = jsonappend.OptString(b, `,"child_job_id":`, j.ChildJobID)
	b = append(b, `,"client":{"name":`...)
	b = jsonappend.String(b, j.Client.Name)
	b = jsonappend.OptString(b, `,"plan":`, j.Client.Plan)
	if len(j.Client.Params) > 0 {
		b = append(b, `,"params":`...)
		if b, err = jsonappend.Value(b, j.Client.Params); err != nil {
			return nil, err
		}
	}
	b = append(b, '}')
	b = jsonappend.OptString(b, `,"webhook_url":`, j.WebhookURL)
	if len(j.Policy) > 0 {
		b = append(b, `,"policy":`...)
		if b, err = jsonappend.Value(b, j.Policy); err != nil {
			return nil, err
		}
	}
	if len(j.Costs) > 0 {
		b = append(b, `,"costs":`...)
		if b, err = jsonappend.FloatMap(b, j.Costs); err != nil {
			return nil, err
		}
	}
	b = append(b, `,"created_at":`...)
	if b, err = jsonappend.Time(b, j.CreatedAt); err != nil {
		return nil, err
	}
	b = append(b, `,"updated_at":`...)
	if b, err = jsonappend.Time(b, j.UpdatedAt); err != nil {
		return nil, err
	}
	if j.FinishedAt != nil {
		b = append(b, `,"finished_at":`...)
		if b, err = jsonappend.Time(b, *j.FinishedAt); err != nil {
			return nil, err
		}
	}
	if len(j.Routes) > 0 {
		b = append(b, `,"routes":`...)
		b = jsonappend.StringMap(b, j.Routes)
	}
	b = jsonappend.OptString(b, `,"aggregator":`, j.Aggregator)
	if j.LastResult != nil {
		b = append(b, `,"last_result":`...)
		if b, err = j.LastResult.AppendJSON(b); err != nil {
			return nil, err
		}
	}
	if a := j.Approval; a != nil {
		b = append(b, `,"approval":{"message":`...)
		b = jsonappend.String(b, a.Message)
		b = append(b, `,"decisions":`...)
		b = jsonappend.Strings(b, a.Decisions)
		b = jsonappend.OptString(b, `,"token":`, a.Token)
		if !a.ExpiresAt.IsZero() {
			b = append(b, `,"expires_at":`...)
			if b, err = jsonappend.Time(b, a.ExpiresAt); err != nil {
				return nil, err
			}
		}
		b = append(b, '}')
	}
	b = jsonappend.OptInt(b, `,"retry_count":`, int64(j.RetryCount))
	b = jsonappend.OptString(b, `,"failed_state":`, j.FailedState)
	b = append(b, `,"transition_count":`...)
	b = strconv.AppendInt(b, int64(j.TransitionCount), 10)
	if len(j.TraceContext) > 0 {
		b = append(b, `,"trace_context":`...)
		b = jsonappend.StringMap(b, j.TraceContext)
	}
	if len(j.DataMetadata) > 0 {
		b = append(b, `,"data_metadata":`...)
		if b, err = jsonappend.Value(b, j.DataMetadata); err != nil {
			return nil, err
		}
	}
	if j.Blobs {
		b = append(b, `,"blobs":true`...)
	}
	b = jsonappend.OptInt(b, `,"format_version":`, int64(j.Format))
	b = jsonappend.OptInt(b, `,"branches_left":`, int64(j.BranchesLeft))
	b = jsonappend.OptInt(b, `,"branches_done":`, int64(j.BranchesDone))
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, j.Version, 10)
	return append(b, '}'), nil
}
