package testenv

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeServer accepts connections on a loopback port and answers each with
// serve; it stops when the test ends.
func fakeServer(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); serve(c) }()
		}
	}()
	return ln.Addr().String()
}

// answerLine reads one line and answers it.
func answerLine(answer string) func(net.Conn) {
	return func(c net.Conn) {
		if _, err := bufio.NewReader(c).ReadString('\n'); err == nil {
			_, _ = c.Write([]byte(answer))
		}
	}
}

func closedPort(t *testing.T) string { return fmt.Sprintf("127.0.0.1:%d", FreePort(t)) }

func TestProbeRedis(t *testing.T) {
	t.Parallel()
	pong := fakeServer(t, answerLine("+PONG\r\n"))
	if v, found, why := probeRedis(pong); v != "redis://"+pong+"/0" || found != "Redis found at "+pong || why != "" {
		t.Errorf("a Redis that answers PONG: %q, %q, %q", v, found, why)
	}
	cases := []struct{ name, addr, want string }{
		{"nothing listens", closedPort(t), "no Redis at "},
		{"a password", fakeServer(t, answerLine("-NOAUTH Authentication required.\r\n")), `answered PING with "-NOAUTH Authentication required."`},
		{"not Redis", fakeServer(t, func(net.Conn) {}), "does not answer as Redis"},
	}
	for _, c := range cases {
		v, _, why := probeRedis(c.addr)
		if v != "" || !strings.Contains(why, c.want) || !strings.Contains(why, RedisVar) {
			t.Errorf("%s: %q, %q; want no URL and a reason with %q and %s", c.name, v, why, c.want, RedisVar)
		}
	}
}

func TestProbePostgres(t *testing.T) {
	t.Parallel()
	closed := closedPort(t)
	if v, _, why := probePostgres(closed, "postgres://postgres@"+closed+"/test?sslmode=disable"); v != "" || !strings.HasPrefix(why, "no PostgreSQL at "+closed) {
		t.Errorf("nothing listens: %q, %q", v, why)
	}
	// A server that hangs up: the reason names the URL tried (never a
	// password) and how to create the database.
	addr := fakeServer(t, func(net.Conn) {})
	v, _, why := probePostgres(addr, "postgres://postgres:secret@"+addr+"/test?sslmode=disable")
	if v != "" || !strings.Contains(why, "refused postgres://postgres:xxxxx@"+addr) || strings.Contains(why, "secret") ||
		!strings.Contains(why, "createdb") || !strings.Contains(why, PostgresVar) || strings.Contains(why, "\n") {
		t.Errorf("a server that hangs up: %q, %q", v, why)
	}
}

func TestProbeS3(t *testing.T) {
	t.Parallel()
	minio := func(health int, buckets func(w http.ResponseWriter)) string {
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/minio/health/ready" {
				w.WriteHeader(health)
				return
			}
			buckets(w)
		}))
		t.Cleanup(s.Close)
		return strings.TrimPrefix(s.URL, "http://")
	}
	list := func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/xml")
		fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Owner><ID>x</ID></Owner><Buckets></Buckets></ListAllMyBucketsResult>`)
	}
	denied := func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InvalidAccessKeyId</Code><Message>The Access Key Id you provided does not exist in our records.</Message></Error>`)
	}
	ok := minio(http.StatusOK, list)
	if v, found, why := probeS3(ok); v != "http://"+ok || found != "MinIO found at http://"+ok || why != "" {
		t.Errorf("a MinIO that lists buckets: %q, %q, %q", v, found, why)
	}
	cases := []struct{ name, addr, want string }{
		{"nothing listens", closedPort(t), "no MinIO at "},
		{"not HTTP", fakeServer(t, answerLine("nope\r\n")), "does not answer as MinIO"},
		{"not ready", minio(http.StatusServiceUnavailable, list), "is not ready (/minio/health/ready answered 503"},
		{"other credentials", minio(http.StatusOK, denied), "refused access key"},
	}
	for _, c := range cases {
		v, _, why := probeS3(c.addr)
		if v != "" || !strings.Contains(why, c.want) || !strings.Contains(why, S3Var) {
			t.Errorf("%s: %q, %q; want no endpoint and a reason with %q and %s", c.name, v, why, c.want, S3Var)
		}
	}
}

// A variable that is set is used as it is, and reported once per process
// with its password hidden; the report names the package's folder.
func TestURLReportsItsDecision(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(ReportVar, dir)
	const name = "AVTO_TEST_TESTENV_SELFTEST_URL"
	t.Setenv(name, "redis://:hunter2@127.0.0.1:1/0")
	for range 2 {
		if got := URL(t, name); got != "redis://:hunter2@127.0.0.1:1/0" {
			t.Fatalf("URL = %q", got)
		}
	}
	Report("SKIPPED", "s3", "no MinIO at 127.0.0.1:9000\n(set it)")
	b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("testenv-%d.txt", os.Getpid())))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("report has %d lines, want 2:\n%s", len(lines), b)
	}
	want := []string{
		"RAN\ttestenv_selftest\t" + name + "=redis://:xxxxx@127.0.0.1:1/0\t",
		"SKIPPED\ts3\tno MinIO at 127.0.0.1:9000 (set it)\t",
	}
	for i, line := range lines {
		if !strings.HasPrefix(line, want[i]) || !strings.HasSuffix(line, "internal/testenv") {
			t.Errorf("line %d = %q, want %q followed by the package folder", i+1, line, want[i])
		}
	}
}

func TestReportWithoutFolderDoesNothing(t *testing.T) {
	t.Setenv(ReportVar, "")
	Report("RAN", "redis", "x") // no panic, no file
}

// TestRedisClusterWithoutPrograms: with no cluster named and no
// redis-server on PATH a cluster suite skips, and reports why.
func TestRedisClusterWithoutPrograms(t *testing.T) {
	t.Setenv(RedisClusterVar, "")
	t.Setenv("AVTO_REQUIRE_SERVICES", "")
	t.Setenv("PATH", t.TempDir())
	dir := t.TempDir()
	t.Setenv(ReportVar, dir)
	var skipped bool
	t.Run("suite", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		RedisCluster(t)
	})
	if !skipped {
		t.Fatal("the suite ran without redis-server")
	}
	files, _ := filepath.Glob(filepath.Join(dir, "testenv-*.txt"))
	var report []byte
	for _, f := range files {
		b, _ := os.ReadFile(f)
		report = append(report, b...)
	}
	if !strings.Contains(string(report), "SKIPPED\tredis-cluster\tredis-server and redis-cli are not on PATH") {
		t.Fatalf("report = %q", report)
	}
	// A named cluster is used as it is.
	t.Setenv(RedisClusterVar, "10.0.0.1:7000,10.0.0.2:7000")
	if got := RedisCluster(t); strings.Join(got, " ") != "10.0.0.1:7000 10.0.0.2:7000" {
		t.Fatalf("named cluster = %v", got)
	}
}
