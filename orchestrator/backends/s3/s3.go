// Package s3 links S3 blob storage (package blob/s3, any S3-compatible
// server) into the orchestrator: import it for its side effect to let
// Config.S3 (S3_ENDPOINT_URL and the other S3_* variables) choose it.
//
//	import _ "github.com/avtomatika-ai/avtomatika-go/orchestrator/backends/s3"
package s3

import (
	"context"

	"github.com/avtomatika-ai/avtomatika-go/blob"
	blobs3 "github.com/avtomatika-ai/avtomatika-go/blob/s3"
	"github.com/avtomatika-ai/avtomatika-go/internal/backend"
)

func init() { backend.Register(backend.S3, backend.Backend{OpenBlobs: open}) }

// open connects and creates the bucket if it is missing.
func open(ctx context.Context, o blob.S3Options) (blob.Store, error) {
	return blobs3.Open(ctx, o)
}
