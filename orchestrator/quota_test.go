package orchestrator_test

import (
	"context"
	"errors"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/avtomatika-ai/avtomatika-go/client"
	"github.com/avtomatika-ai/avtomatika-go/internal/testenv"
	"github.com/avtomatika-ai/avtomatika-go/orchestrator"
	"github.com/avtomatika-ai/avtomatika-go/protocol"
)

// deploymentKeys lists the Redis keys of the deployment prefix that match
// pattern (a glob after the prefix's hash tag), scanning to the end.
func deploymentKeys(t *testing.T, url, prefix, pattern string) []string {
	t.Helper()
	opts, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := goredis.NewClient(opts)
	defer rdb.Close()
	ctx := context.Background()
	var keys []string
	iter := rdb.Scan(ctx, 0, "{"+prefix+"}"+pattern, 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return keys
}

// deleteKeys deletes the deployment's keys that match pattern and returns
// how many.
func deleteKeys(t *testing.T, url, prefix, pattern string) int {
	t.Helper()
	keys := deploymentKeys(t, url, prefix, pattern)
	if len(keys) == 0 {
		return 0
	}
	opts, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := goredis.NewClient(opts)
	defer rdb.Close()
	if err := rdb.Del(context.Background(), keys...).Err(); err != nil {
		t.Fatal(err)
	}
	return len(keys)
}

// A client's monthly quota survives the loss of the live state: the
// counters lived in Redis, and after Redis lost the deployment's data the
// orchestrator charges back, from history (PostgreSQL), the jobs the client
// created this month. A restart that finds the counters (only the epoch
// gone, as after an upgrade from a version without it) does not count the
// jobs twice.
func TestQuotaSurvivesLiveStateLoss(t *testing.T) {
	redisURL, prefix := redisForTest(t)
	historyURI := testenv.PostgresSchemaURL(t, testenv.URL(t, testenv.PostgresVar), "avto_quota_test")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The lost jobs are failed once the lost store's id is stale: short.
	cfg := orchestrator.WithLiveStateTiming(orchestrator.Config{
		Logger: quiet(), GlobalWorkerToken: "tok", RedisURL: redisURL, RedisPrefix: prefix, HistoryURI: historyURI,
		Clients: []orchestrator.Client{
			{Name: "metered", Token: "metered-token", MonthlyAttempts: 4},
			{Name: "steady", Token: "steady-token", MonthlyAttempts: 3},
		},
	}, 200*time.Millisecond, 2*time.Second)
	// life starts an orchestrator and returns it with its two clients.
	life := func() (o *orchestrator.Orchestrator, metered, steady *client.Client) {
		o, err := orchestrator.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := o.Register(taskBlueprints()...); err != nil {
			t.Fatal(err)
		}
		base := serveForTest(t, o)
		metered, _ = client.New(base, "metered-token")
		steady, _ = client.New(base, "steady-token")
		return o, metered, steady
	}
	create := func(c *client.Client) (string, error) { return c.CreateJob(ctx, "/jobs/flaky", nil) }
	mustCreate := func(c *client.Client, what string) string {
		t.Helper()
		id, err := create(c)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return id
	}
	refused := func(c *client.Client, what string) {
		t.Helper()
		if _, err := create(c); !errors.Is(err, client.ErrRateLimited) {
			t.Fatalf("%s: %v, want the quota's 429", what, err)
		}
	}

	// Life 1: two jobs of metered (no worker: they wait), then a stop.
	first, metered, _ := life()
	ids := []string{mustCreate(metered, "metered's job 1"), mustCreate(metered, "metered's job 2")}
	for _, id := range ids {
		waitForStatus(t, metered, id, protocol.StatusWaitingForWorker)
	}
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// Redis loses the deployment's data.
	if n := deleteKeys(t, redisURL, prefix, "*"); n == 0 {
		t.Fatal("the deployment has no keys in Redis")
	}

	// Life 2: once the loss is handled (the lost jobs are failed), the
	// two jobs still count: two more creations, not four.
	second, metered, steady := life()
	for _, id := range ids {
		waitForStatus(t, metered, id, protocol.StatusFailed)
	}
	mustCreate(metered, "metered's job 3 of 4")
	mustCreate(metered, "metered's job 4 of 4")
	refused(metered, "metered's fifth job this month")
	waitForStatus(t, steady, mustCreate(steady, "steady's job 1 of 3"), protocol.StatusWaitingForWorker)
	if err := second.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// Only the epoch goes; the counters stay and are not added to.
	if n := deleteKeys(t, redisURL, prefix, "*deployment-epoch*"); n != 1 {
		t.Fatalf("deleted %d epoch keys, want 1", n)
	}
	_, metered, steady = life()
	testenv.WaitUntil(t, "the epoch to be set again", 10*time.Second, func() bool { return epochSet(t, redisURL, prefix) })
	mustCreate(steady, "steady's job 2 of 3")
	mustCreate(steady, "steady's job 3 of 3")
	refused(steady, "steady's fourth job this month")
	refused(metered, "metered's fifth job this month, after the restart")
}

// epochSet tells whether the deployment's epoch key is in Redis.
func epochSet(t *testing.T, url, prefix string) bool {
	t.Helper()
	return len(deploymentKeys(t, url, prefix, "*deployment-epoch*")) > 0
}
