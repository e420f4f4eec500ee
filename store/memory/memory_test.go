package memory_test

import (
	"testing"

	"github.com/avtomatika-ai/avtomatika-go/store"
	"github.com/avtomatika-ai/avtomatika-go/store/memory"
	"github.com/avtomatika-ai/avtomatika-go/store/storetest"
)

func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, opts storetest.Options) store.Store {
		return memory.New(memory.Options{Retention: opts.Retention})
	})
}
