package history

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// batch is what the writer collected: events, and the acknowledgements due
// once they are written. acks[i] answers for events[:upto[i]]; event is the
// index of a RecordSync's own event, -1 for a Flush.
type batch struct {
	events []Event
	acks   []pendingAck
	stop   bool
}

type pendingAck struct {
	ch    chan error
	event int
}

func (b *batch) add(it item) (urgent bool) {
	switch it.kind {
	case itemStop:
		b.stop = true
		return true
	case itemBarrier:
		b.acks = append(b.acks, pendingAck{ch: it.ack, event: -1})
		return true
	}
	b.events = append(b.events, it.ev)
	if it.ack != nil {
		b.acks = append(b.acks, pendingAck{ch: it.ack, event: len(b.events) - 1})
		return true
	}
	return false
}

// run is the writer goroutine: it collects a batch, writes it, answers the
// acknowledgements, and stops at the stop marker or when aborted.
func (r *Recorder) run() {
	defer close(r.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-r.abort:
			cancel()
		case <-ctx.Done():
		}
	}()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		var b batch
		select {
		case it := <-r.queue:
			r.collect(&b, it, timer)
		case <-r.abort:
			r.giveUp(nil)
			return
		}
		rejected, err := r.write(ctx, b.events)
		if err != nil { // aborted
			r.giveUp(&b)
			return
		}
		for _, a := range b.acks {
			var err error
			if a.event >= 0 {
				err = rejected[a.event]
			}
			a.ch <- err
		}
		if b.stop {
			return
		}
	}
}

// collect fills b from first on: it waits up to MaxDelay for a full batch,
// and stops waiting at a Flush, a RecordSync or the stop marker, after
// taking what is already queued.
func (r *Recorder) collect(b *batch, first item, timer *time.Timer) {
	urgent := b.add(first)
	waiting := false
	for !b.stop && len(b.events) < r.opts.BatchSize {
		select {
		case it := <-r.queue:
			urgent = b.add(it) || urgent
			continue
		default:
		}
		if urgent {
			return
		}
		if !waiting {
			timer.Reset(r.opts.MaxDelay)
			waiting = true
		}
		select {
		case it := <-r.queue:
			urgent = b.add(it) || urgent
		case <-timer.C:
			return
		case <-r.abort:
			timer.Stop()
			return
		}
	}
	if waiting {
		timer.Stop()
	}
}

// write appends events, retrying failures until they succeed or ctx (the
// writer's) is cancelled. An ErrInvalidEvent failure is narrowed down to the
// events at fault by writing the batch one event at a time; those are
// returned by index (logged, not written). err is non-nil only when
// aborted.
func (r *Recorder) write(ctx context.Context, events []Event) (rejected map[int]error, err error) {
	if len(events) == 0 {
		return nil, nil
	}
	backoff := r.opts.RetryMin
	for {
		err := r.append(ctx, events)
		switch {
		case err == nil:
			r.stats.written.Add(uint64(len(events)))
			r.stats.batches.Add(1)
			return rejected, nil
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(err, ErrInvalidEvent) && len(events) == 1:
			r.stats.rejected.Add(1)
			r.opts.Logger.Error("history: event refused by the store, not written",
				"event_id", events[0].ID, "type", events[0].Type, "job_id", events[0].JobID, "error", err)
			return map[int]error{0: err}, nil
		case errors.Is(err, ErrInvalidEvent):
			return r.writeEach(ctx, events)
		}
		r.stats.failures.Add(1)
		r.opts.Logger.Warn("history: write failed, retrying", "events", len(events), "retry_in", backoff, "error", err)
		select {
		case <-time.After(jitter(backoff)):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		backoff = min(2*backoff, r.opts.RetryMax)
	}
}

func (r *Recorder) writeEach(ctx context.Context, events []Event) (map[int]error, error) {
	rejected := map[int]error{}
	for i := range events {
		rej, err := r.write(ctx, events[i:i+1])
		if err != nil {
			return nil, err
		}
		if e, ok := rej[0]; ok {
			rejected[i] = e
		}
	}
	return rejected, nil
}

func (r *Recorder) append(ctx context.Context, events []Event) error {
	ctx, cancel := context.WithTimeout(ctx, r.opts.WriteTimeout)
	defer cancel()
	if err := r.store.Append(ctx, events); err != nil {
		return fmt.Errorf("history: append %d events: %w", len(events), err)
	}
	return nil
}

// giveUp counts what is left unwritten after an abort and answers the
// waiting acknowledgements with ErrClosed. Close started stop before it
// aborted, and senders give up on abort, so sealed comes soon; after it
// nothing more enters the queue.
func (r *Recorder) giveUp(b *batch) {
	<-r.sealed
	n := 0
	answer := func(ch chan error) {
		if ch != nil {
			ch <- ErrClosed
		}
	}
	if b != nil {
		n += len(b.events)
		for _, a := range b.acks {
			answer(a.ch)
		}
	}
	for {
		select {
		case it := <-r.queue:
			if it.kind == itemEvent {
				n++
			}
			answer(it.ack)
		default:
			r.unwritten.Add(int64(n))
			if n > 0 {
				r.opts.Logger.Error("history: recorder closed before writing every event", "unwritten", n)
			}
			return
		}
	}
}

// jitter spreads d over [d/2, d).
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2)
}
