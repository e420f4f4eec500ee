package api

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Connection limits of an HTTP server that serves the API. They bound what
// one source address, and everyone together, can hold open: requests
// whose bodies trickle in, idle keep-alive connections, long polls and
// WebSockets alike.
const (
	// DefaultMaxConnections is the default limit on open connections.
	DefaultMaxConnections = 10000
	// DefaultMaxConnectionsPerIP is the default limit on the open
	// connections of one source address: a worker holds one to three
	// (its long poll, a heartbeat or result, an idle keep-alive one), so
	// some 300 workers behind one NAT address fit.
	DefaultMaxConnectionsPerIP = 1000
	// DefaultBodyTimeout is the default time a JSON request body has to
	// arrive in full, and the longest a streamed upload may go without
	// sending a byte.
	DefaultBodyTimeout = 60 * time.Second
)

// Limits are the connection-level protections Harden applies.
type Limits struct {
	// MaxConnections bounds the open connections (DefaultMaxConnections;
	// negative: no limit). At the limit, new connections wait in the
	// listen backlog until one closes.
	MaxConnections int
	// MaxConnectionsPerIP bounds the open connections of one source IP
	// address (DefaultMaxConnectionsPerIP; negative: no limit). A
	// connection over it is answered 429 with Retry-After and closed,
	// without its body being read.
	MaxConnectionsPerIP int
	// BodyTimeout is the time a request body has to arrive in full (a
	// streamed upload: the longest pause between bytes); past it the
	// request gets 408 and the connection is closed (DefaultBodyTimeout;
	// negative: none). It wins over Options.BodyTimeout.
	BodyTimeout time.Duration
}

func (l Limits) withDefaults() Limits {
	if l.MaxConnections == 0 {
		l.MaxConnections = DefaultMaxConnections
	}
	if l.MaxConnectionsPerIP == 0 {
		l.MaxConnectionsPerIP = DefaultMaxConnectionsPerIP
	}
	if l.BodyTimeout == 0 {
		l.BodyTimeout = DefaultBodyTimeout
	}
	return l
}

// Harden applies the limits to srv, which is about to serve ln: it returns
// the listener to serve instead (counting connections) and sets
// srv.ConnContext (a ConnContext already set still runs first). A server
// that serves the API without Harden has only the request-level
// protections of Options (body size, BodyTimeout).
func Harden(srv *http.Server, ln net.Listener, lim Limits) net.Listener {
	lim = lim.withDefaults()
	prev := srv.ConnContext
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if prev != nil {
			ctx = prev(ctx, c)
		}
		info := &connInfo{bodyTimeout: lim.BodyTimeout}
		if lc, ok := c.(*limitedConn); ok {
			info.overLimit, info.addr = lc.overLimit, lc.ip
		}
		return context.WithValue(ctx, connInfoKey{}, info)
	}
	if lim.MaxConnections < 0 && lim.MaxConnectionsPerIP < 0 {
		return ln
	}
	return newLimitListener(ln, lim.MaxConnections, lim.MaxConnectionsPerIP)
}

type connInfoKey struct{}

// connInfo is what Harden tells the handlers about a connection.
type connInfo struct {
	overLimit   bool // over the per-address limit: answer 429 and close
	addr        string
	bodyTimeout time.Duration
}

func connInfoFrom(ctx context.Context) *connInfo {
	info, _ := ctx.Value(connInfoKey{}).(*connInfo)
	return info
}

// limitListener counts open connections, in total and by source IP.
type limitListener struct {
	net.Listener
	total     chan struct{} // a slot per open connection; nil: no total limit
	perIP     int           // <= 0: no per-address limit
	done      chan struct{}
	closeOnce sync.Once

	mu   sync.Mutex
	byIP map[string]int
}

func newLimitListener(ln net.Listener, total, perIP int) *limitListener {
	l := &limitListener{Listener: ln, perIP: perIP, done: make(chan struct{}), byIP: map[string]int{}}
	if total > 0 {
		l.total = make(chan struct{}, total)
	}
	return l
}

// Accept waits for a free slot, then for a connection. A connection over
// its address's limit is returned marked, so that it is answered 429.
func (l *limitListener) Accept() (net.Conn, error) {
	if l.total != nil {
		select {
		case l.total <- struct{}{}:
		case <-l.done:
			return nil, net.ErrClosed
		}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		l.releaseTotal()
		return nil, err
	}
	ip := remoteIP(c.RemoteAddr())
	l.mu.Lock()
	l.byIP[ip]++
	over := l.perIP > 0 && l.byIP[ip] > l.perIP
	l.mu.Unlock()
	return &limitedConn{Conn: c, l: l, ip: ip, overLimit: over}, nil
}

func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

func (l *limitListener) releaseTotal() {
	if l.total != nil {
		<-l.total
	}
}

func (l *limitListener) release(ip string) {
	l.mu.Lock()
	if l.byIP[ip]--; l.byIP[ip] <= 0 {
		delete(l.byIP, ip)
	}
	l.mu.Unlock()
	l.releaseTotal()
}

// open returns the number of open connections of an address (tests).
func (l *limitListener) open(ip string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byIP[ip]
}

func remoteIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// limitedConn gives its slots back when closed (also when hijacked for a
// WebSocket: the hijacker closes this same connection).
type limitedConn struct {
	net.Conn
	l         *limitListener
	ip        string
	overLimit bool
	once      sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.ip) })
	return err
}

// overConnLimit answers a request that arrived on a connection over its
// address's limit: 429, Retry-After, and the connection is closed; the body
// is never read.
func overConnLimit(w http.ResponseWriter, r *http.Request) bool {
	info := connInfoFrom(r.Context())
	if info == nil || !info.overLimit {
		return false
	}
	w.Header().Set("Connection", "close")
	w.Header().Set("Retry-After", strconv.Itoa(1))
	writeError(w, http.StatusTooManyRequests, "Too many open connections from %s (MAX_CONNECTIONS_PER_IP): close idle connections or retry later", info.addr)
	return true
}
