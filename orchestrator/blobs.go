package orchestrator

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/blob"
	"github.com/avtomatika-ai/avtomatika-go/blob/local"
	"github.com/avtomatika-ai/avtomatika-go/internal/backend"
)

// blobStorage is the orchestrator's blob store, as configured.
type blobStorage struct {
	store        blob.Store   // nil: disabled
	handler      http.Handler // serves local presigned URLs; nil with S3
	own          bool         // opened here, closed by Close
	cleanupAfter time.Duration
}

// openBlobs opens the store the configuration names: Config.Blobs, else S3
// when an endpoint is set (creating the bucket), else a local folder when
// BlobDir is set, else none.
func openBlobs(cfg Config) (*blobStorage, error) {
	b := &blobStorage{}
	switch {
	case cfg.Blobs != nil:
		b.store = cfg.Blobs
	case cfg.S3.Configured():
		s3, err := backend.Lookup(backend.S3)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		st, err := s3.OpenBlobs(ctx, cfg.S3)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("open blob storage: %w", err)
		}
		b.store, b.own = st, true
		cfg.Logger.Info("blob storage: S3", "endpoint", cfg.S3.Endpoint, "bucket", st.Bucket())
	case cfg.BlobDir != "":
		st, err := local.Open(local.Options{Dir: cfg.BlobDir, Bucket: cfg.S3.Bucket, SigningKey: []byte(cfg.BlobSigningKey),
			MaxUploadBytes: cfg.MaxUploadBytes, Route: local.DefaultRoute})
		if err != nil {
			return nil, fmt.Errorf("open blob storage: %w", err)
		}
		b.store, b.own = st, true
		cfg.Logger.Info("blob storage: local folder", "dir", st.Dir(), "bucket", st.Bucket())
	default:
		return b, nil
	}
	if ls, ok := b.store.(*local.Store); ok {
		b.handler = ls.Handler()
	}
	if !cfg.KeepBlobs {
		b.cleanupAfter = cfg.JobRetention
		if b.cleanupAfter <= 0 {
			b.cleanupAfter = 24 * time.Hour
		}
	}
	return b, nil
}

func (b *blobStorage) close() error {
	if b == nil || !b.own {
		return nil
	}
	return b.store.Close()
}
