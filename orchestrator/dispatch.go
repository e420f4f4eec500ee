package orchestrator

import "github.com/avtomatika-ai/avtomatika-go/internal/dispatch"

func engineDispatch(cfg Config) dispatch.Policy {
	return dispatch.Policy{MinReputation: cfg.MinReputation}
}
