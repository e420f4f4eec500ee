package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// wsHub keeps one WebSocket per worker (on this orchestrator) for pushing
// commands such as cancel_task.
type wsHub struct {
	log   *slog.Logger
	mu    sync.Mutex
	conns map[string]*wsConn
	// cancels holds when each cancel_task was pushed, so that a heartbeat
	// soon after does not cancel the task a second time (see recentCancel);
	// entries older than cancelEcho go once per cancelEcho (pruned).
	cancels map[workerTask]time.Time
	pruned  time.Time
}

type workerTask struct{ workerID, taskID string }

// cancelEcho is how long a heartbeat leaves out a task whose cancel was
// pushed over the socket: long enough for a handler to unwind and report,
// short enough that a worker that missed the command still learns of it.
// The Python SDK cancels its asyncio task again on every listing, and a
// second cancel while the first unwinds loses the "cancelled" result.
const cancelEcho = 30 * time.Second

type wsConn struct {
	c    *websocket.Conn
	out  chan protocol.Command
	done chan struct{}
}

func newWSHub(log *slog.Logger) *wsHub {
	return &wsHub{log: log, conns: map[string]*wsConn{}, cancels: map[workerTask]time.Time{}}
}

// attach makes c the worker's connection, closing an older one.
func (h *wsHub) attach(workerID string, c *wsConn) {
	h.mu.Lock()
	old := h.conns[workerID]
	h.conns[workerID] = c
	h.mu.Unlock()
	if old != nil {
		_ = old.c.Close(websocket.StatusPolicyViolation, "New connection established")
	}
}

func (h *wsHub) detach(workerID string, c *wsConn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conns[workerID] == c {
		delete(h.conns, workerID)
	}
}

// send queues a command for a connected worker; it reports whether the
// worker is connected here.
func (h *wsHub) send(workerID string, cmd protocol.Command) bool {
	h.mu.Lock()
	c := h.conns[workerID]
	h.mu.Unlock()
	if c == nil {
		return false
	}
	select {
	case c.out <- cmd:
		if cmd.Command == protocol.CommandCancelTask {
			h.pushedCancel(workerTask{workerID, cmd.TaskID}, time.Now())
		}
		return true
	case <-c.done:
		return false
	default:
		h.log.Warn("websocket command queue full; the worker learns from its next heartbeat", "worker_id", workerID)
		return false
	}
}

func (h *wsHub) pushedCancel(k workerTask, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if now.Sub(h.pruned) >= cancelEcho {
		// Not on every push: a bulk cancel pushes thousands.
		maps.DeleteFunc(h.cancels, func(_ workerTask, at time.Time) bool { return now.Sub(at) >= cancelEcho })
		h.pruned = now
	}
	h.cancels[k] = now
}

// recentCancel reports whether a cancel for the worker's task was pushed
// over the socket less than cancelEcho ago.
func (h *wsHub) recentCancel(workerID, taskID string, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	at, ok := h.cancels[workerTask{workerID, taskID}]
	return ok && now.Sub(at) < cancelEcho
}

// withoutRecentCancels leaves out of ids the tasks whose cancel was just
// pushed to the worker.
func (h *wsHub) withoutRecentCancels(workerID string, ids []string) []string {
	now := time.Now()
	return slices.DeleteFunc(ids, func(id string) bool { return h.recentCancel(workerID, id, now) })
}

func (h *wsHub) closeAll() {
	h.mu.Lock()
	conns := h.conns
	h.conns = map[string]*wsConn{}
	h.mu.Unlock()
	for _, c := range conns {
		_ = c.c.Close(websocket.StatusGoingAway, "Server shutdown")
	}
}

// websocket upgrades an authenticated worker. Frames from the worker are
// signed events; frames to it are commands.
func (s *Server) websocket(w http.ResponseWriter, r *http.Request) {
	setVersion(w, r)
	id, key, status, err := s.authWorker(r, r.PathValue("worker_id"))
	if err != nil {
		writeError(w, status, "%v", err)
		return
	}
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return // Accept has answered
	}
	conn.SetReadLimit(s.opts.MaxBodyBytes)
	c := &wsConn{c: conn, out: make(chan protocol.Command, 64), done: make(chan struct{})}
	s.ws.attach(id, c)
	defer s.ws.detach(id, c)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		defer close(c.done)
		for {
			select {
			case <-ctx.Done():
				return
			case cmd := <-c.out:
				raw, _ := json.Marshal(cmd)
				wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
				err := conn.Write(wctx, websocket.MessageText, raw)
				wcancel()
				if err != nil {
					cancel()
					return
				}
			}
		}
	}()
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			if websocket.CloseStatus(err) == -1 && !errors.Is(err, context.Canceled) {
				s.log.Debug("websocket closed", "worker_id", id, "error", err)
			}
			return
		}
		s.wsEvent(ctx, id, key, data)
	}
}

// wsEvent handles one event frame; a bad frame is logged and dropped, the
// connection stays.
func (s *Server) wsEvent(ctx context.Context, workerID, key string, data []byte) {
	var ev protocol.WorkerEvent
	if err := strictUnmarshal(data, &ev); err != nil {
		s.log.Warn("bad websocket frame", "worker_id", workerID, "error", err)
		return
	}
	if err := protocol.Verify(data, protocol.VerifyOptions{Key: key, WorkerID: workerID, Event: true}); err != nil {
		s.log.Warn("websocket event rejected", "worker_id", workerID, "error", err)
		return
	}
	if first, err := s.store.SetOnce(ctx, "replay:"+ev.Security.Signature, 2*protocol.ReplayWindow+time.Second); err != nil || !first {
		s.log.Warn("websocket event rejected as a replay", "worker_id", workerID)
		return
	}
	if err := s.eng.WorkerEvent(ctx, workerID, ev); err != nil {
		s.log.Warn("websocket event failed", "worker_id", workerID, "error", err)
	}
}
