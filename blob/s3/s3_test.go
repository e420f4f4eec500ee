package s3_test

import (
	"testing"

	"github.com/avtomatika-ai/avtomatika-go/blob"
	"github.com/avtomatika-ai/avtomatika-go/blob/blobtest"
	"github.com/avtomatika-ai/avtomatika-go/internal/testenv/s3env"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	blobtest.Run(t, func(t *testing.T) blob.Store { return s3env.Bucket(t) })
}
