package api

import (
	"math"
	"net/http"
	"slices"
	"strings"

	"github.com/avtomatika-ai/avtomatika-go/internal/auth"
	"github.com/avtomatika-ai/avtomatika-go/internal/engine"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
	"github.com/avtomatika-ai/avtomatika-go/store"
)

// Routes upstream's client API has besides ours: a dashboard, the worker
// catalog, the caller's quarantined jobs and the reload of workers.toml.

// dashboard answers the calling client's summary: the live workers, its
// jobs by status, and the queued tasks.
func (s *Server) dashboard(w http.ResponseWriter, r *http.Request, cl *auth.Client) {
	out := protocol.Dashboard{
		Workers: protocol.DashboardWorkers{ByStatus: map[string]int{}},
		Jobs:    map[string]int{},
		Queues:  protocol.DashboardQueues{Pending: map[string]int{}},
	}
	workers, err := s.eng.ListWorkers(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out.Workers.Total = len(workers)
	for _, wi := range workers {
		out.Workers.ByStatus[cmpOr(wi.Status, "idle")]++
	}
	lengths, err := s.store.QueueLengths(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	queued := 0
	for q, n := range lengths {
		queued += n
		if t, ok := strings.CutPrefix(q, store.PendingQueue("")); ok {
			out.Queues.Pending[t] += n
		} else {
			out.Queues.Assigned += n
		}
	}
	counted, cursor := 0, ""
	for counted < protocol.DashboardMaxJobs {
		jobs, next, err := s.eng.ListJobs(r.Context(), store.JobFilter{Client: cl.Name, Limit: min(500, protocol.DashboardMaxJobs-counted), Cursor: cursor})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		for _, j := range jobs {
			out.Jobs[string(j.Status)]++
		}
		counted += len(jobs)
		if next == "" {
			break
		}
		cursor = next
	}
	out.JobsTruncated = counted >= protocol.DashboardMaxJobs && cursor != ""
	out.Jobs["queued"] = queued
	writeJSON(w, http.StatusOK, out)
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// workerCatalog answers every skill the live workers offer: its contract
// (as the first worker offering it registered it, with its price), how
// many workers offer it, of which types, and their average reputation.
func (s *Server) workerCatalog(w http.ResponseWriter, r *http.Request, _ *auth.Client) {
	workers, err := s.eng.ListWorkers(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	slices.SortFunc(workers, func(a, b engine.WorkerInfo) int { return strings.Compare(a.ID, b.ID) })
	out := map[string]*protocol.CatalogEntry{}
	reputation := map[string]float64{}
	for _, wi := range workers {
		for _, sk := range wi.Skills {
			if sk.Name == "" {
				continue
			}
			e := out[sk.Name]
			if e == nil {
				e = &protocol.CatalogEntry{Contract: protocol.CatalogContract{SkillInfo: sk}, WorkerTypes: []string{}}
				if c := wi.Capabilities; c != nil {
					if p, ok := c.CostPerSkill[sk.Name]; ok {
						e.Contract.BasePrice = &p
					}
				}
				out[sk.Name] = e
			}
			e.ProvidersCount++
			reputation[sk.Name] += wi.Reputation
			if t := cmpOr(wi.Type, "unknown"); !slices.Contains(e.WorkerTypes, t) {
				e.WorkerTypes = append(e.WorkerTypes, t)
			}
		}
	}
	catalog := protocol.WorkerCatalog{}
	for name, e := range out {
		slices.Sort(e.WorkerTypes)
		e.AverageReputation = math.Round(reputation[name]/float64(e.ProvidersCount)*1e4) / 1e4
		catalog[name] = *e
	}
	writeJSON(w, http.StatusOK, catalog)
}

// quarantinedJobs answers the caller's quarantined jobs, newest first, as
// upstream's bare list; limit bounds it (100, at most 500).
func (s *Server) quarantinedJobs(w http.ResponseWriter, r *http.Request, cl *auth.Client) {
	limit, ok := intParam(r.URL.Query(), "limit", 1, 500, 100)
	if !ok {
		writeError(w, http.StatusBadRequest, "Invalid limit parameter: an integer from 1 to 500")
		return
	}
	page, err := s.findJobs(r, cl, JobQuery{Status: string(protocol.StatusQuarantined), Limit: limit})
	if err != nil {
		s.failList(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page.Jobs)
}

// reloadWorkers re-reads workers.toml (X-Admin-Token, as every reload).
func (s *Server) reloadWorkers(w http.ResponseWriter, r *http.Request) {
	if !s.admin(w, r) {
		return
	}
	if s.opts.ReloadWorkers == nil {
		writeError(w, http.StatusNotImplemented, "reloading is not configured")
		return
	}
	n, err := s.opts.ReloadWorkers()
	if err != nil {
		writeError(w, http.StatusBadRequest, "reload failed, the previous configuration stays: %v", err)
		return
	}
	writeJSON(w, http.StatusOK, workersReloaded{Status: "worker_configs_reloaded", Workers: n})
}

type workersReloaded struct {
	Status  string `json:"status"`
	Workers int    `json:"workers"`
}
