package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/avtomatika-ai/avtomatika-go/client"
	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// TestOneCommandRun runs the showcase as a newcomer does, with no command
// (go run ./examples/showcase), on the embedded defaults and at full time
// scale: within 30 s the client's job has finished and the signed webhook
// has arrived, the process keeps serving, and Ctrl-C ends it with status 0.
// Two copies run at once, from the same folder, on different ports.
func TestOneCommandRun(t *testing.T) {
	t.Parallel()
	bin := showcaseBinary(t)
	dir := t.TempDir()
	type copyOf struct {
		p        *process
		api      string
		started  time.Time
		jobID    string
		finished time.Duration
	}
	var copies []*copyOf
	for i := range 2 {
		apiPort, hookPort := testenv.FreePort(t), testenv.FreePort(t)
		d := &deployment{t: t, bin: bin, dir: dir, env: []string{
			fmt.Sprintf("API_PORT=%d", apiPort), fmt.Sprintf("WEBHOOK_PORT=%d", hookPort),
		}}
		c := &copyOf{api: fmt.Sprintf("http://127.0.0.1:%d", apiPort), started: time.Now()}
		c.p = d.start(fmt.Sprintf("showcase #%d", i+1), nil) // no command: everything in one process
		copies = append(copies, c)
	}

	created := regexp.MustCompile(`Created job (\S+) \(blueprint full_showcase\)`)
	for _, c := range copies {
		testenv.WaitUntil(t, c.p.name+" to finish its client run", 30*time.Second-time.Since(c.started), func() bool {
			select {
			case <-c.p.done:
				t.Fatalf("%s exited: %v", c.p.name, c.p.cmd.ProcessState)
			default:
			}
			out := c.p.output()
			m := created.FindStringSubmatch(out)
			if m == nil {
				return false
			}
			c.jobID = m[1]
			return strings.Contains(out, "Job "+c.jobID+": FINISHED") &&
				strings.Contains(out, "Webhook received (signature verified): event=job_finished job="+c.jobID+" status=finished") &&
				strings.Contains(out, "Still serving (Ctrl-C to stop):")
		})
		c.finished = time.Since(c.started)
	}
	if copies[0].jobID == copies[1].jobID {
		t.Fatalf("both copies report job %s", copies[0].jobID)
	}

	// Both keep serving, each its own jobs.
	time.Sleep(time.Second)
	ctx := context.Background()
	for _, c := range copies {
		select {
		case <-c.p.done:
			t.Fatalf("%s stopped after its client run: %v", c.p.name, c.p.cmd.ProcessState)
		default:
		}
		resp, err := http.Get(c.api + "/_public/status")
		if err != nil {
			t.Fatalf("%s: %v", c.p.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", c.p.name, resp.StatusCode)
		}
		vip, _ := client.New(c.api, "user_token_vip")
		if j, err := vip.Job(ctx, c.jobID); err != nil || j.Status != protocol.StatusFinished {
			t.Fatalf("%s: job %s: %+v %v", c.p.name, c.jobID, j, err)
		}
		// The console it prints takes the token it prints, and lists the job.
		port := strings.TrimPrefix(c.api, "http://127.0.0.1")
		printed := regexp.MustCompile(`console    http://localhost` + regexp.QuoteMeta(port) + `/console/ \(log in with the token user_token_vip; admin token (admin-[A-Za-z0-9]+) for every client's jobs, queues and schedules\)`).
			FindStringSubmatch(c.p.output())
		if printed == nil {
			t.Fatalf("%s does not print the console's URL and tokens", c.p.name)
		}
		// The admin token it prints opens the operators' pages.
		adminJar, _ := cookiejar.New(nil)
		admin := &http.Client{Jar: adminJar}
		if resp, err := admin.PostForm(c.api+"/console/login", url.Values{"token": {printed[1]}}); err != nil {
			t.Fatalf("%s: console login as admin: %v", c.p.name, err)
		} else {
			resp.Body.Close()
		}
		for _, p := range []string{"/console/queues", "/console/schedules"} {
			resp, err := admin.Get(c.api + p)
			if err != nil {
				t.Fatalf("%s: %s: %v", c.p.name, p, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || strings.Contains(string(body), "Operators only") {
				t.Fatalf("%s: %s with the printed admin token: %d", c.p.name, p, resp.StatusCode)
			}
		}
		jar, _ := cookiejar.New(nil)
		browser := &http.Client{Jar: jar}
		resp, err = browser.PostForm(c.api+"/console/login", url.Values{"token": {"user_token_vip"}})
		if err != nil {
			t.Fatalf("%s: console login: %v", c.p.name, err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), c.jobID) {
			t.Fatalf("%s: the console's jobs page after login (%d) does not list job %s", c.p.name, resp.StatusCode, c.jobID)
		}
		t.Logf("%s: job finished and webhook received %s after the start", c.p.name, c.finished.Round(100*time.Millisecond))
	}

	// Ctrl-C.
	for _, c := range copies {
		if err := c.p.cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range copies {
		select {
		case <-c.p.done:
		case <-time.After(20 * time.Second):
			t.Fatalf("%s did not stop on SIGINT", c.p.name)
		}
		if code := c.p.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("%s exited with status %d after SIGINT", c.p.name, code)
		}
	}
	// They shared the folder: one history database, one blob folder.
	for _, name := range []string{"avtomatika_history.db", "avtomatika_blobs"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("the default %s is not in the working directory: %v", name, err)
		}
	}
}

// TestDockerImageWorkdirIsWritable: the image runs as nonroot, and the
// showcase's relative defaults (BLOB_DIR=avtomatika_blobs, the SQLite
// history) resolve against the working directory, so the final stage must
// set one that nonroot can write (distroless: /home/nonroot), not /.
func TestDockerImageWorkdirIsWritable(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var user, workdir string
	for line := range strings.Lines(string(raw)) {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM": // a new stage starts afresh
			user, workdir = "", ""
		case "USER":
			user = f[1]
		case "WORKDIR":
			workdir = f[1]
		}
	}
	if user == "" || strings.HasPrefix(user, "root") || strings.HasPrefix(user, "0") {
		t.Fatalf("the image runs as %q; want an unprivileged user", user)
	}
	if workdir != "/home/nonroot" && workdir != "/tmp" {
		t.Fatalf("the image's WORKDIR is %q: %s cannot write BLOB_DIR=avtomatika_blobs or avtomatika_history.db there", workdir, user)
	}
}
