package orchestrator_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/orchestrator"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// The stalled-body test: a child process (this test binary, running
// TestStallClientHelper) opens AVTO_STALL_CONNS connections that announce a
// 10 MB body and send one byte per AVTO_STALL_TICK, on the worker result
// route (without and with a token) and the client create route, while
// this process serves the orchestrator, keeps regular requests flowing
// from another loopback address, and samples its own RSS. The default is
// a scaled-down run; the full-size one of the security review is
//
//	AVTO_STALL_CONNS=2000 AVTO_STALL_TICK=2s AVTO_STALL_BODY_TIMEOUT=10s \
//	  go test ./orchestrator -run TestStalledBodiesAreCutOff -v -timeout 5m
//
// (AVTO_STALL_PER_IP sets MaxConnectionsPerIP, AVTO_STALL_MIX the routes:
// a comma list of worker-notoken, worker, client).

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// rssKiB reads a line of /proc/self/status (VmRSS, VmHWM) in KiB.
func rssKiB(field string) int {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
			return n
		}
	}
	return -1
}

type stallReport struct {
	Opened   int            `json:"opened"`
	Closed   int            `json:"closed"`   // closed by the server
	Statuses map[string]int `json:"statuses"` // status line code → connections ("none": closed without an answer)
	P50, Max float64        // seconds from opening to the close
	Errors   []string       `json:"errors"`
}

func TestStalledBodiesAreCutOff(t *testing.T) {
	if testing.Short() {
		t.Skip("opens hundreds of connections")
	}
	conns, _ := strconv.Atoi(envOr("AVTO_STALL_CONNS", "200"))
	timeout, err1 := time.ParseDuration(envOr("AVTO_STALL_BODY_TIMEOUT", "1s"))
	tick, err2 := time.ParseDuration(envOr("AVTO_STALL_TICK", "250ms"))
	perIP, _ := strconv.Atoi(envOr("AVTO_STALL_PER_IP", strconv.Itoa(conns*3/4)))
	if err1 != nil || err2 != nil || conns <= 0 || conns > 5000 {
		t.Fatalf("bad AVTO_STALL_* settings: %v %v %d", err1, err2, conns)
	}
	cfg := orchestrator.Config{
		Logger: quiet(), GlobalWorkerToken: "tok", Clients: []orchestrator.Client{{Name: "c", Token: "ct"}},
		RequestBodyTimeout: timeout, MaxConnectionsPerIP: perIP,
	}
	_, base := serveOrchestrator(t, cfg, pipeline())
	addr := strings.TrimPrefix(base, "http://")

	// Regular traffic comes from 127.0.0.2, so that the per-address limit
	// the stalled connections of 127.0.0.1 reach is not its own.
	dialer := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	if c, err := dialer.Dial("tcp", addr); err != nil {
		t.Skipf("cannot dial from 127.0.0.2: %v", err)
	} else {
		c.Close()
	}
	regular := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: dialer.DialContext}}
	var ok, failed atomic.Int64
	var failures sync.Map
	request := func() {
		body := []byte(`{"initial_data":{"path":"x"}}`)
		req, _ := http.NewRequest("POST", base+"/api/v1/jobs/pipeline", bytes.NewReader(body))
		req.Header.Set(protocol.HeaderClientToken, "ct")
		resp, err := regular.Do(req)
		if err != nil {
			failed.Add(1)
			failures.Store(err.Error(), true)
			return
		}
		var created protocol.CreateJobResponse
		_ = json.NewDecoder(resp.Body).Decode(&created)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			failed.Add(1)
			failures.Store("create: "+resp.Status, true)
			return
		}
		req, _ = http.NewRequest("GET", base+"/api/v1/jobs/"+created.JobID, nil)
		req.Header.Set(protocol.HeaderClientToken, "ct")
		if resp, err = regular.Do(req); err != nil || resp.StatusCode != http.StatusOK {
			failed.Add(1)
			failures.Store(fmt.Sprint("get: ", err, resp), true)
		} else {
			ok.Add(1)
		}
		if resp != nil {
			resp.Body.Close()
		}
	}
	request()
	if failed.Load() > 0 {
		t.Fatal("regular requests fail before the attack")
	}

	rssBefore := rssKiB("VmRSS")
	var peak atomic.Int64
	peak.Store(int64(rssBefore))
	stop := make(chan struct{})
	var bg sync.WaitGroup
	bg.Add(1)
	go func() { // regular requests and RSS samples during the attack
		defer bg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			request()
			if r := int64(rssKiB("VmRSS")); r > peak.Load() {
				peak.Store(r)
			}
		}
	}()

	cmd := exec.Command(os.Args[0], "-test.run=^TestStallClientHelper$", "-test.v")
	cmd.Env = append(os.Environ(), "AVTO_STALL_CLIENT=1", "AVTO_STALL_ADDR="+addr,
		"AVTO_STALL_CONNS="+strconv.Itoa(conns), "AVTO_STALL_TICK="+tick.String(),
		"AVTO_STALL_WAIT="+(timeout+30*time.Second+2*tick).String())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	elapsed := time.Since(start)
	close(stop)
	bg.Wait()
	rssAfter := rssKiB("VmRSS")
	var rep stallReport
	for _, line := range strings.Split(out.String(), "\n") {
		if js, found := strings.CutPrefix(line, "STALL-REPORT "); found {
			if err := json.Unmarshal([]byte(js), &rep); err != nil {
				t.Fatalf("report: %v", err)
			}
		}
	}
	if err != nil || rep.Opened == 0 {
		t.Fatalf("stall client: %v\n%s", err, out.String())
	}
	var fails []string
	failures.Range(func(k, _ any) bool { fails = append(fails, k.(string)); return true })
	t.Logf("%d stalled connections (body timeout %s, a byte every %s, MaxConnectionsPerIP %d): %d closed by the server in %s "+
		"(median %.1fs, last %.1fs after opening), answers %v; RSS %d MiB before, peak %d MiB, %d MiB after (VmHWM %d MiB); "+
		"regular requests during the attack: %d ok, %d failed %v",
		rep.Opened, timeout, tick, perIP, rep.Closed, elapsed.Round(time.Millisecond), rep.P50, rep.Max, rep.Statuses,
		rssBefore>>10, peak.Load()>>10, rssAfter>>10, rssKiB("VmHWM")>>10, ok.Load(), failed.Load(), fails)
	if rep.Opened != conns || rep.Closed != conns {
		t.Fatalf("%d of %d connections opened, %d closed by the server; errors %v", rep.Opened, conns, rep.Closed, rep.Errors)
	}
	for code := range rep.Statuses {
		if !slices.Contains([]string{"403", "408", "429"}, code) {
			t.Errorf("stalled connections answered %s: %v", code, rep.Statuses)
		}
	}
	if os.Getenv("AVTO_STALL_MIX") == "" && rep.Statuses["408"] == 0 {
		t.Errorf("no stalled body timed out (408): %v", rep.Statuses)
	}
	if perIP > 0 && perIP < conns && rep.Statuses["429"] == 0 {
		t.Errorf("MaxConnectionsPerIP %d < %d connections, yet no 429: %v", perIP, conns, rep.Statuses)
	}
	if failed.Load() > 0 || ok.Load() == 0 {
		t.Errorf("regular requests during the attack: %d ok, %d failed: %v", ok.Load(), failed.Load(), fails)
	}
}

// TestStallClientHelper is the attacking side of TestStalledBodiesAreCutOff,
// run in a child process so that its connections do not count in the
// server's RSS. It does nothing in a normal test run.
func TestStallClientHelper(t *testing.T) {
	if os.Getenv("AVTO_STALL_CLIENT") == "" {
		t.Skip("the client half of TestStalledBodiesAreCutOff")
	}
	addr := os.Getenv("AVTO_STALL_ADDR")
	conns, _ := strconv.Atoi(os.Getenv("AVTO_STALL_CONNS"))
	tick, _ := time.ParseDuration(os.Getenv("AVTO_STALL_TICK"))
	wait, _ := time.ParseDuration(os.Getenv("AVTO_STALL_WAIT"))
	mix := strings.Split(envOr("AVTO_STALL_MIX", "worker-notoken,worker,client"), ",")
	heads := map[string]string{
		"worker-notoken": "POST " + protocol.PathResult + " HTTP/1.1\r\n",
		"worker":         "POST " + protocol.PathResult + " HTTP/1.1\r\nX-Worker-Token: tok\r\nX-Worker-ID: w-stall\r\n",
		"client":         "POST /api/v1/jobs/pipeline HTTP/1.1\r\nX-Client-Token: ct\r\n",
	}
	rep := stallReport{Statuses: map[string]int{}}
	var mu sync.Mutex
	var open []net.Conn
	var durations []float64
	var wg sync.WaitGroup
	dialer := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}
	for i := range conns {
		head, found := heads[mix[i%len(mix)]]
		if !found {
			t.Fatalf("AVTO_STALL_MIX: unknown %q", mix[i%len(mix)])
		}
		c, err := dialer.Dial("tcp", addr)
		if err == nil {
			defer c.Close()
			_, err = io.WriteString(c, head+"Host: x\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n{")
		}
		mu.Lock()
		if err != nil {
			rep.Errors = append(rep.Errors, err.Error())
			mu.Unlock()
			continue
		}
		rep.Opened++
		mu.Unlock()
		open = append(open, c)
		opened := time.Now()
		wg.Add(1)
		go func() { // waits for the answer and the close
			defer wg.Done()
			_ = c.SetReadDeadline(time.Now().Add(wait))
			rd := bufio.NewReaderSize(c, 256)
			code := "none"
			if line, err := rd.ReadString('\n'); err == nil {
				if f := strings.Fields(line); len(f) > 1 {
					code = f[1]
				}
			}
			_, err := io.Copy(io.Discard, rd)
			mu.Lock()
			defer mu.Unlock()
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				rep.Errors = append(rep.Errors, "still open after "+wait.String())
				return
			}
			rep.Closed++ // EOF or reset: the server closed it
			rep.Statuses[code]++
			durations = append(durations, time.Since(opened).Seconds())
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for ticking := true; ticking; {
		select {
		case <-done:
			ticking = false
		case <-time.After(tick):
			for _, c := range open {
				_, _ = c.Write([]byte(" ")) // fails once the server closed it
			}
		}
	}
	slices.Sort(durations)
	if len(durations) > 0 {
		rep.P50, rep.Max = durations[len(durations)/2], durations[len(durations)-1]
	}
	if len(rep.Errors) > 10 {
		rep.Errors = append(rep.Errors[:10], fmt.Sprintf("and %d more", len(rep.Errors)-10))
	}
	js, _ := json.Marshal(rep)
	fmt.Printf("STALL-REPORT %s\n", js)
}
