package local_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/avtomatika-ai/avtomatika-go/blob"
	"github.com/avtomatika-ai/avtomatika-go/blob/blobtest"
	"github.com/avtomatika-ai/avtomatika-go/blob/local"
)

// serve opens a store in a temporary folder whose presigned URLs point at
// a test server.
func serve(t *testing.T, opts local.Options) *local.Store {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	opts.Dir = t.TempDir()
	opts.BaseURL = srv.URL
	s, err := local.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle(local.DefaultRoute+"/", s.Handler())
	return s
}

func TestConformance(t *testing.T) {
	t.Parallel()
	blobtest.Run(t, func(t *testing.T) blob.Store { return serve(t, local.Options{}) })
}
