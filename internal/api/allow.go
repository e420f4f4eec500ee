package api

import (
	"net/http"
	"strings"
)

// probeMethods are the methods tried for a path's Allow header, in
// alphabetical order.
var probeMethods = []string{http.MethodDelete, http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPatch, http.MethodPost, http.MethodPut}

// allow answers a request whose path has documented routes, but none for
// its method, with 405 and an Allow header listing the methods of the
// documented operations of that path. The mux alone gets this wrong in
// two ways. Its 405 lists every pattern that matches the path: hidden ones
// too (POST /api/v1/jobs/{endpoint}, which only explains a 404) and
// templates that a concrete path hides in the API document (PATCH
// /_worker/workers/{worker_id} for /_worker/workers/register, where
// OpenAPI takes the concrete path). And a hidden template answers methods
// of a concrete documented path (POST /api/v1/jobs/quarantined was "no
// blueprint serves" rather than 405).
func (s *Server) allow(next http.Handler) http.Handler {
	documented := map[string]bool{}
	for _, r := range s.routeTable() {
		if !r.hidden {
			documented[r.method+" "+r.path] = true
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pattern := s.mux.Handler(r)
		if documented[pattern] {
			next.ServeHTTP(w, r)
			return
		}
		methods, wildcards := s.allowedMethods(r, documented)
		// A hidden route keeps the paths that no more specific documented
		// route has.
		if len(methods) == 0 || (pattern != "" && wildcards >= strings.Count(pattern, "{")) {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Allow", strings.Join(methods, ", "))
		writeError(w, http.StatusMethodNotAllowed, "method %s is not allowed here; allowed: %s", r.Method, strings.Join(methods, ", "))
	})
}

// allowedMethods are the methods whose documented route matches r's path
// with the fewest wildcards (the most specific, as OpenAPI picks), in the
// order of probeMethods, and that number of wildcards. HEAD comes with GET,
// as the mux serves GET routes to HEAD requests.
func (s *Server) allowedMethods(r *http.Request, documented map[string]bool) (methods []string, wildcards int) {
	wildcards = -1
	for _, m := range probeMethods {
		probe := r.Clone(r.Context())
		probe.Method = m
		_, pattern := s.mux.Handler(probe)
		if !documented[pattern] {
			continue
		}
		switch n := strings.Count(pattern, "{"); {
		case wildcards < 0 || n < wildcards:
			wildcards, methods = n, []string{m}
		case n == wildcards:
			methods = append(methods, m)
		}
	}
	return methods, wildcards
}
