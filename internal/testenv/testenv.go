// Package testenv tells tests which real services they may use.
//
// A service's variable (AVTO_TEST_REDIS_URL, ...) names it; when the
// variable is unset, Redis, PostgreSQL and MinIO are looked for on their
// standard local ports (see the Default* constants) and used when they
// answer. Chromium and Prometheus run only when their variable names them.
// A suite whose service is neither named nor found skips, loudly; with
// AVTO_REQUIRE_SERVICES=1 (as in CI) it fails instead.
//
// Each decision is also appended, one line per service and test process, to
// a file in the folder named by AVTO_TEST_REPORT_DIR when it is set; `make
// test` sets it and prints the lines as a summary after `go test`.
//
// WaitUntil is the suites' one way to wait for a condition.
package testenv

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Service variables.
const (
	RedisVar    = "AVTO_TEST_REDIS_URL"
	PostgresVar = "AVTO_TEST_POSTGRES_URL"
	S3Var       = "AVTO_TEST_S3_ENDPOINT"
	ChromiumVar = "AVTO_TEST_CHROMIUM"
	PromVar     = "AVTO_TEST_PROMETHEUS"

	// ReportVar names the folder where each test process writes its
	// decisions (one file per process).
	ReportVar = "AVTO_TEST_REPORT_DIR"
)

// Where an unset variable's service is looked for: Redis and MinIO
// (minioadmin/minioadmin unless S3Credentials say otherwise) on their
// standard loopback ports, and PostgreSQL's database test as user postgres.
const (
	DefaultRedisAddr    = "127.0.0.1:6379"
	DefaultPostgresURL  = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	DefaultPostgresAddr = "127.0.0.1:5432"
	DefaultS3Addr       = "127.0.0.1:9000"
)

// Required reports whether missing services are failures.
func Required() bool { return os.Getenv("AVTO_REQUIRE_SERVICES") == "1" }

// URL returns the value of the service variable, or the service found on
// its standard local port; otherwise it skips the test (fails it when
// services are required).
func URL(t testing.TB, name string) string {
	t.Helper()
	d := decide(name)
	switch {
	case d.value != "":
		d.report("RAN", d.found)
		return d.value
	case Required():
		d.report("FAILED", d.why+", and AVTO_REQUIRE_SERVICES=1")
		t.Fatalf("%s: %s, but AVTO_REQUIRE_SERVICES=1: this suite must run", d.service, d.why)
	}
	d.report("SKIPPED", d.why)
	t.Skipf("SKIPPED %s: %s", d.service, d.why)
	return ""
}

// Find is URL for a test that runs either way, with the service when there
// is one and without it otherwise: it never skips or fails.
func Find(name string) (string, bool) {
	d := decide(name)
	if d.value != "" {
		d.report("RAN", d.found)
	}
	return d.value, d.value != ""
}

// S3Credentials are the test server's: AVTO_TEST_S3_ACCESS_KEY and
// AVTO_TEST_S3_SECRET_KEY, minioadmin/minioadmin by default.
func S3Credentials() (access, secret string) {
	access, secret = os.Getenv("AVTO_TEST_S3_ACCESS_KEY"), os.Getenv("AVTO_TEST_S3_SECRET_KEY")
	if access == "" {
		access = "minioadmin"
	}
	if secret == "" {
		secret = "minioadmin"
	}
	return access, secret
}

// A decision about one service variable, taken once per test process.
type decision struct {
	name    string // the variable
	service string // redis, postgres, s3, ...
	value   string // what the suites use; "" when they cannot run
	found   string // where value comes from
	why     string // why there is none
}

var (
	decisionsMu sync.Mutex
	decisions   = map[string]decision{}
	reported    = map[string]bool{}
)

func decide(name string) decision {
	decisionsMu.Lock()
	defer decisionsMu.Unlock()
	if d, ok := decisions[name]; ok {
		return d
	}
	d := decision{name: name, service: serviceName(name)}
	if v := os.Getenv(name); v != "" {
		d.value, d.found = v, name+"="+redact(v)
	} else if d.value, d.found, d.why = probe(name); d.found != "" {
		d.found += " (" + name + " unset)"
	}
	decisions[name] = d
	return d
}

// report writes the decision's line once per process and outcome.
func (d decision) report(outcome, text string) {
	decisionsMu.Lock()
	key := d.name + " " + outcome
	done := reported[key]
	reported[key] = true
	decisionsMu.Unlock()
	if !done {
		Report(outcome, d.service, text)
	}
}

func serviceName(name string) string {
	switch name {
	case RedisVar:
		return "redis"
	case PostgresVar:
		return "postgres"
	case S3Var:
		return "s3"
	case PromVar:
		return "prometheus"
	}
	return strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(name, "AVTO_TEST_"), "_URL"))
}

// probe looks for the service of an unset variable: value is what to use
// (empty when nothing usable answers), found says what answered, why says
// what is missing.
func probe(name string) (value, found, why string) {
	switch name {
	case RedisVar:
		return probeRedis(DefaultRedisAddr)
	case PostgresVar:
		return probePostgres(DefaultPostgresAddr, DefaultPostgresURL)
	case S3Var:
		return probeS3(DefaultS3Addr)
	case ChromiumVar, PromVar:
		// Programs, not services: they run only when named, but the
		// reason says where one is.
		why = name + " is not set"
		for _, bin := range map[string][]string{ChromiumVar: {"chromium", "chromium-browser", "google-chrome"}, PromVar: {"prometheus"}}[name] {
			if p, err := exec.LookPath(bin); err == nil {
				return "", "", fmt.Sprintf("%s (set %s=%s to run it)", why, name, p)
			}
		}
		return "", "", why + " (set it to the program's path)"
	}
	return "", "", name + " is not set"
}

func probeRedis(addr string) (value, found, why string) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", "", fmt.Sprintf("no Redis at %s (set %s)", addr, RedisVar)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	line, err := "", error(nil)
	if _, err = c.Write([]byte("PING\r\n")); err == nil {
		line, err = bufio.NewReader(c).ReadString('\n')
	}
	line = strings.TrimSpace(line)
	switch {
	case err == nil && line == "+PONG":
		return "redis://" + addr + "/0", "Redis found at " + addr, ""
	case err == nil && strings.HasPrefix(line, "-"):
		return "", "", fmt.Sprintf("Redis at %s answered PING with %q (set %s, e.g. redis://:PASSWORD@%s/0)", addr, line, RedisVar, addr)
	}
	return "", "", fmt.Sprintf("%s does not answer as Redis (set %s)", addr, RedisVar)
}

func probePostgres(addr, dbURL string) (value, found, why string) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", "", fmt.Sprintf("no PostgreSQL at %s (set %s)", addr, PostgresVar)
	}
	c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err == nil {
		err = conn.Ping(ctx)
		conn.Close(ctx)
	}
	if err != nil {
		return "", "", fmt.Sprintf("PostgreSQL at %s refused %s: %s (create the database: createdb -h 127.0.0.1 -U postgres test, or set %s)",
			addr, redact(dbURL), oneLine(err.Error()), PostgresVar)
	}
	return dbURL, "PostgreSQL found at " + redact(dbURL), ""
}

func probeS3(addr string) (value, found, why string) {
	endpoint := "http://" + addr
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", "", fmt.Sprintf("no MinIO at %s (set %s)", addr, S3Var)
	}
	c.Close()
	hc := &http.Client{Timeout: 3 * time.Second}
	resp, err := hc.Get(endpoint + "/minio/health/ready")
	if err != nil {
		return "", "", fmt.Sprintf("%s does not answer as MinIO: %s (set %s)", addr, oneLine(err.Error()), S3Var)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", "", fmt.Sprintf("MinIO at %s is not ready (/minio/health/ready answered %s; set %s)", addr, resp.Status, S3Var)
	}
	access, secret := S3Credentials()
	mc, err := minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(access, secret, "")})
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = mc.ListBuckets(ctx)
	}
	if err != nil {
		return "", "", fmt.Sprintf("MinIO at %s refused access key %q: %s (set AVTO_TEST_S3_ACCESS_KEY and AVTO_TEST_S3_SECRET_KEY, or %s)",
			addr, access, oneLine(err.Error()), S3Var)
	}
	return endpoint, "MinIO found at " + endpoint, ""
}

// Report notes a decision about a suite's service in the run's summary
// (outcome RAN, SKIPPED or FAILED), when AVTO_TEST_REPORT_DIR is set. It
// does nothing otherwise. The line carries the package's folder.
func Report(outcome, service, text string) {
	// Read here, not at start-up: go test caches the results of packages
	// that never read it, and reruns those that do when it changes.
	dir := os.Getenv(ReportVar)
	if dir == "" {
		return
	}
	f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("testenv-%d.txt", os.Getpid())), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s\t%s\t%s\t%s\n", outcome, service, oneLine(text), packageDir())
}

// packageDir is the test's package folder (go test runs a test binary in
// it) relative to the repository root, the folder that holds .git.
func packageDir() string {
	wd, err := os.Getwd()
	if err != nil {
		return "?"
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, ".git")); err == nil {
			if rel, err := filepath.Rel(dir, wd); err == nil {
				return filepath.ToSlash(rel)
			}
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return wd
}

// redact hides a URL's password.
func redact(v string) string {
	if u, err := url.Parse(v); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			return u.Redacted()
		}
	}
	return v
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
