// Package simulate holds what the showcase's workers and blueprints share to
// pretend they work.
package simulate

import (
	"context"
	"time"
)

// Sleep waits d multiplied by scale (zero means 1), or until ctx ends.
func Sleep(ctx context.Context, d time.Duration, scale float64) error {
	if scale == 0 {
		scale = 1
	}
	t := time.NewTimer(time.Duration(float64(d) * scale))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
