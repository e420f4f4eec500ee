// Package s3env gives tests a bucket of their own on the S3 server named by
// AVTO_TEST_S3_ENDPOINT, or the MinIO found on 127.0.0.1:9000 (skipping, or
// failing under AVTO_REQUIRE_SERVICES=1, when there is none; see testenv),
// and a private MinIO server for tests that stop it.
package s3env

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	blobs3 "github.com/avtomatika-ai/avtomatika-go/blob/s3"
	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
)

// Credentials of the test server: AVTO_TEST_S3_ACCESS_KEY and
// AVTO_TEST_S3_SECRET_KEY, minioadmin/minioadmin by default.
func Credentials() (access, secret string) { return testenv.S3Credentials() }

// UniqueBucket returns a fresh bucket name.
func UniqueBucket() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return "avto-test-" + hex.EncodeToString(b)
}

// Options returns the options of the test server for a new unique bucket
// (not yet created); the test is skipped when no server is configured.
func Options(t testing.TB) blobs3.Options {
	t.Helper()
	endpoint := testenv.URL(t, testenv.S3Var)
	access, secret := Credentials()
	return blobs3.Options{Endpoint: endpoint, AccessKey: access, SecretKey: secret, Bucket: UniqueBucket()}
}

// Bucket creates a unique bucket on the test server and removes it, with
// its objects, when the test ends.
func Bucket(t testing.TB) *blobs3.Store {
	t.Helper()
	return BucketFor(t, Options(t))
}

// BucketFor creates the bucket of opts and removes it when the test ends.
func BucketFor(t testing.TB, opts blobs3.Options) *blobs3.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := blobs3.Open(ctx, opts)
	if err != nil {
		t.Fatalf("open test bucket: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.RemoveBucket(ctx); err != nil {
			t.Logf("remove test bucket %s: %v", opts.Bucket, err)
		}
	})
	return s
}

// MinIO is a private MinIO server of one test, which the test may stop and
// start again (the shared server named by AVTO_TEST_S3_ENDPOINT is never
// stopped).
type MinIO struct {
	t        testing.TB
	bin, dir string
	addr     string
	Endpoint string // http://127.0.0.1:<port>
	cmd      *exec.Cmd
	done     chan struct{}
	out      *bytes.Buffer
}

// MinIOBinary is the server binary: AVTO_TEST_MINIO_BIN, else
// $HOME/.cache/avtomatika/bin/minio (where .ci/run builds it).
func MinIOBinary() string {
	if p := os.Getenv("AVTO_TEST_MINIO_BIN"); p != "" {
		return p
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "avtomatika", "bin", "minio")
}

// StartMinIO starts a private server on a free loopback port with a
// temporary data folder. The S3 suites' rules apply: without
// AVTO_TEST_S3_ENDPOINT the test is skipped (or fails under
// AVTO_REQUIRE_SERVICES=1), and so it is when the binary is missing.
func StartMinIO(t testing.TB) *MinIO {
	t.Helper()
	testenv.URL(t, testenv.S3Var)
	bin := MinIOBinary()
	if _, err := os.Stat(bin); err != nil {
		if testenv.Required() {
			testenv.Report("FAILED", "s3 (private MinIO)", fmt.Sprintf("no MinIO binary at %s, and AVTO_REQUIRE_SERVICES=1", bin))
			t.Fatalf("MinIO binary %s: %v (set AVTO_TEST_MINIO_BIN)", bin, err)
		}
		testenv.Report("SKIPPED", "s3 (private MinIO)", fmt.Sprintf("no MinIO binary at %s (set AVTO_TEST_MINIO_BIN, or run .ci/run)", bin))
		t.Skipf("SKIPPED: no MinIO binary at %s (set AVTO_TEST_MINIO_BIN, or run .ci/run)", bin)
	}
	testenv.Report("RAN", "s3 (private MinIO)", bin)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	m := &MinIO{t: t, bin: bin, dir: t.TempDir(), addr: addr, Endpoint: "http://" + addr}
	m.Start()
	t.Cleanup(func() {
		m.Stop()
		if t.Failed() {
			t.Logf("--- private MinIO output ---\n%s", m.out)
		}
	})
	return m
}

// Start (re)starts the server on its address and data folder and waits
// until it answers.
func (m *MinIO) Start() {
	m.t.Helper()
	access, secret := Credentials()
	m.out = &bytes.Buffer{}
	m.cmd = exec.Command(m.bin, "server", m.dir, "--address", m.addr, "--console-address", "127.0.0.1:0", "--quiet")
	m.cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+access, "MINIO_ROOT_PASSWORD="+secret, "MINIO_BROWSER=off")
	m.cmd.Stdout, m.cmd.Stderr = m.out, m.out
	if err := m.cmd.Start(); err != nil {
		m.t.Fatalf("start MinIO: %v", err)
	}
	m.done = make(chan struct{})
	go func() {
		_ = m.cmd.Wait()
		close(m.done)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		// Ready, not just live: a live server may still answer "Server
		// not initialized yet" to S3 requests.
		if m.serving() {
			return
		}
		select {
		case <-m.done:
			m.t.Fatalf("MinIO exited at start:\n%s", m.out)
		default:
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("MinIO did not come up on %s:\n%s", m.addr, m.out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// serving reports whether the server is ready and answers S3 requests (an
// anonymous listing is refused, not "not initialized").
func (m *MinIO) serving() bool {
	resp, err := http.Get(m.Endpoint + "/minio/health/ready")
	if err != nil {
		return false
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	resp, err = http.Get(m.Endpoint + "/")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return !bytes.Contains(body, []byte("XMinioServerNotInitialized"))
}

// Stop kills the server (as a crash would) and waits for it to exit.
func (m *MinIO) Stop() {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	select {
	case <-m.done:
		return
	default:
	}
	_ = m.cmd.Process.Kill()
	<-m.done
}
