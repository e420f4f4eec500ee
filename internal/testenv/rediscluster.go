package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// RedisClusterVar names a Redis Cluster for the tests that need one: the
// addresses of its masters, host:port,host:port,... When it is unset, a
// test gets a private cluster of three masters (StartRedisCluster).
const RedisClusterVar = "AVTO_TEST_REDIS_CLUSTER"

// RedisCluster returns the addresses of a Redis Cluster with three or more
// masters: the one RedisClusterVar names, or a private one of three masters
// that redis-server and redis-cli (on PATH) start for the test and that
// stops when it ends. Without either it skips the test (fails it when
// services are required). Tests on a named cluster share it: they must use
// key prefixes of their own.
func RedisCluster(t testing.TB) []string {
	t.Helper()
	if v := os.Getenv(RedisClusterVar); v != "" {
		Report("RAN", "redis-cluster", RedisClusterVar+"="+v)
		return strings.Split(v, ",")
	}
	server, err1 := exec.LookPath("redis-server")
	cli, err2 := exec.LookPath("redis-cli")
	if err1 != nil || err2 != nil {
		why := "redis-server and redis-cli are not on PATH, and " + RedisClusterVar + " is not set"
		if Required() {
			Report("FAILED", "redis-cluster", why+", and AVTO_REQUIRE_SERVICES=1")
			t.Fatalf("redis-cluster: %s, but AVTO_REQUIRE_SERVICES=1: this suite must run", why)
		}
		Report("SKIPPED", "redis-cluster", why)
		t.Skipf("SKIPPED redis-cluster: %s", why)
	}
	addrs := StartRedisCluster(t, server, cli, 3)
	Report("RAN", "redis-cluster", "a private cluster of 3 masters ("+server+")")
	return addrs
}

// StartRedisCluster starts a cluster of n masters on loopback ports, in a
// folder of the test, without persistence, and waits until it serves every
// slot. It is stopped when the test ends.
func StartRedisCluster(t testing.TB, server, cli string, n int) []string {
	t.Helper()
	dir := t.TempDir()
	var addrs []string
	for i := range n {
		port := clusterPort(t)
		addr := "127.0.0.1:" + strconv.Itoa(port)
		cmd := exec.Command(server, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
			"--cluster-enabled", "yes", "--cluster-config-file", fmt.Sprintf("nodes-%d.conf", i),
			"--dir", dir, "--save", "", "--appendonly", "no", "--logfile", fmt.Sprintf("redis-%d.log", i))
		if err := cmd.Start(); err != nil {
			t.Fatalf("start redis-server: %v", err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		})
		waitListening(t, addr, filepath.Join(dir, fmt.Sprintf("redis-%d.log", i)))
		addrs = append(addrs, addr)
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	waitClusterOK(t, addrs)
	return addrs
}

// clusterPort returns a free loopback port whose cluster bus port (+10000)
// is free too.
func clusterPort(t testing.TB) int {
	t.Helper()
	for range 50 {
		p := FreePort(t)
		if p+10000 > 65535 {
			continue
		}
		if ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+10000)); err == nil {
			ln.Close()
			return p
		}
	}
	t.Fatal("no free port pair for a cluster node")
	return 0
}

func waitListening(t testing.TB, addr, logFile string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	log, _ := os.ReadFile(logFile)
	t.Fatalf("redis-server on %s did not start:\n%s", addr, log)
}

// waitClusterOK waits until every node reports cluster_state:ok.
func waitClusterOK(t testing.TB, addrs []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, addr := range addrs {
		c := goredis.NewClient(&goredis.Options{Addr: addr})
		for {
			info, err := c.ClusterInfo(ctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if ctx.Err() != nil {
				c.Close()
				t.Fatalf("cluster node %s is not ok: %v %s", addr, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
		c.Close()
	}
}

// ClusterURL is the go-redis cluster URL of the nodes (the first, and the
// others as addr parameters).
func ClusterURL(addrs []string) string {
	u := "redis://" + addrs[0]
	for i, a := range addrs[1:] {
		sep := "&"
		if i == 0 {
			sep = "?"
		}
		u += sep + "addr=" + a
	}
	return u
}

// CleanCluster deletes, when the test ends, the keys matching the patterns
// (SCAN MATCH) on every master of the cluster.
func CleanCluster(t testing.TB, addrs []string, patterns ...string) {
	t.Cleanup(func() {
		c := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := c.ForEachMaster(ctx, func(ctx context.Context, m *goredis.Client) error {
			for _, match := range patterns {
				iter := m.Scan(ctx, 0, match, 1000).Iterator()
				for iter.Next(ctx) {
					if err := m.Del(ctx, iter.Val()).Err(); err != nil {
						return err
					}
				}
				if err := iter.Err(); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Errorf("delete test keys on the cluster: %v", err)
		}
	})
}
