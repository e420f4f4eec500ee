package api

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/avtomatika-ai/avtomatika-go/blob/local"
	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// TestLocalPresignedURLsUsePublicURL: the local backend's relative URLs
// are made absolute with PublicURL (or the request's host), and its
// presigned route serves them.
func TestLocalPresignedURLsUsePublicURL(t *testing.T) {
	t.Parallel()
	st, err := local.Open(local.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, public := range []string{"", "https://orch.example/base"} {
		ts := newTestServer(t, func(o *Options) {
			o.Blobs, o.BlobHandler, o.PublicURL = st, st.Handler(), public
		})
		id := ts.createJob(vipToken, nil)
		r := ts.do("GET", "/api/v1/jobs/"+id+"/files/upload?filename=a.txt", client(vipToken), nil)
		var up protocol.UploadURL
		r.json(t, &up)
		base := public
		if base == "" {
			base = ts.http.URL
		}
		if r.status != 200 || !strings.HasPrefix(up.URL, base+"/_public/blobs/avtomatika-payloads/jobs/"+id+"/a.txt?") || up.ExpiresIn != 3600 {
			t.Fatalf("upload URL %d %+v", r.status, up)
		}
		if public != "" {
			continue
		}
		put := ts.do("PUT", strings.TrimPrefix(up.URL, ts.http.URL), nil, "hello")
		if put.status != http.StatusOK {
			t.Fatalf("presigned PUT: %d %s", put.status, put.body)
		}
		got := ts.do("GET", "/api/v1/jobs/"+id+"/files/download/a.txt", client(vipToken), nil) // follows the redirect
		if got.status != 200 || string(got.body) != "hello" {
			t.Fatalf("download: %d %q", got.status, got.body)
		}
	}
}

func TestPresignedRouteWithoutLocalStorage(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, nil)
	if r := ts.do("GET", "/_public/blobs/bucket/key", nil, nil); r.status != http.StatusNotFound {
		t.Fatalf("%d %s", r.status, r.body)
	}
}

// TestS3ConfigHashMismatchIsLogged: a worker registering with another
// S3 configuration is accepted, with a warning.
func TestS3ConfigHashMismatchIsLogged(t *testing.T) {
	t.Parallel()
	var logs testenv.Buffer
	ts := newTestServer(t, func(o *Options) {
		o.S3ConfigHash = "0123456789abcdef"
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	w := ts.worker("gpu-worker-01", gpuToken)
	reg := protocol.Registration{WorkerID: w.id, Capabilities: &protocol.Capabilities{S3ConfigHash: "fedcba9876543210"},
		SupportedSkills: []protocol.SkillInfo{{Name: "work"}}}
	if r := ts.do("POST", protocol.PathRegister, w.headers(), w.sign(reg, false)); r.status != 200 {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	if !strings.Contains(logs.String(), "another S3 configuration (s3_config_hash fedcba9876543210, ours 0123456789abcdef)") {
		t.Fatalf("logs: %s", logs.String())
	}
}
