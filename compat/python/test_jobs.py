"""full_showcase driven by Python SDK workers only: the seed's client flow,
progress, custom statuses, failures and retries."""

from __future__ import annotations

import re

import pytest

from harness import WORKER_IDS, dispatches_of, wait_until, webhook_signature_ok

SEED_JOB = {"path": "/s3/bucket/input.mp4", "quality": "high", "use_advanced_dispatch": True}
ALL = ("gpu", "cpu-reliable", "cpu-unreliable")


def test_seed_client_flow(deploy, webhook):
    """The seed's client: create a job with a webhook, poll it with its
    progress until it ends, print the analysis summary; the webhook
    receiver gets a signed notification."""
    d = deploy()
    d.start_workers(*ALL, STEP_SECONDS="0.2")
    job_id = d.client.create(SEED_JOB, webhook_url=webhook.url)

    seen = []

    def record(j):
        seen.append((j["status"], j.get("current_state"), j.get("progress", 0), j.get("progress_message", "")))
        return j["status"] in ("finished", "failed", "cancelled", "error", "quarantined")

    job = d.client.wait(job_id, record, timeout=30, every=0.1)
    assert job["status"] == "finished", job
    assert job["current_state"] == "finished"
    assert job["progress"] == 1

    # The cheapest analysis went to the unreliable (cheapest) worker, the
    # fan-out's three analyses came back from Python workers.
    assert job["state_history"]["analysis"]["location"] == WORKER_IDS["cpu-unreliable"]
    summary = job["state_history"]["analysis_summary"]
    assert len(summary) == 3, summary
    assert sorted(a["file_name"] for a in summary.values()) == ["audio_track.aac", "subtitles.srt", "video_track.h264"]
    assert {a["location"] for a in summary.values()} <= set(WORKER_IDS.values())
    assert job["state_history"]["output_path"] == "/path/to/transcoded.mp4"
    assert job["state_history"]["duration"] == 120
    assert job["state_history"]["video_id"] == "vid_" + job_id[:8]

    # The progress bar saw the transcoding's steps, in order.
    steps = [(p, m) for s, state, p, m in seen if state == "dispatch_transcoding" and re.fullmatch(r"Step \d of 5 complete\.", m)]
    assert steps, f"no transcoding progress was seen: {seen}"
    assert all(0 < p <= 1 for p, _ in steps)
    assert [p for p, _ in steps] == sorted(p for p, _ in steps), steps

    hooks = wait_until("the webhook", lambda: webhook.for_job(job_id), timeout=10)
    assert len(hooks) == 1, hooks
    h = hooks[0]
    assert h["json"]["event"] == "job_finished" and h["json"]["status"] == "finished", h["json"]
    assert webhook_signature_ok(h["headers"], h["body"]), h["headers"]
    d.assert_no_protocol_errors()


@pytest.mark.parametrize("websockets", ["true", "false"], ids=["over-websocket", "over-http"])
def test_progress(deploy, websockets):
    """send_progress reaches the job: progress 0.2 ... 1.0 with the step's
    message, whether the SDK sends its events over the WebSocket or by POST."""
    d = deploy()
    d.start_workers("gpu", "cpu-reliable", WORKER_ENABLE_WEBSOCKETS=websockets, STEP_SECONDS="0.3")
    job_id = d.client.create({"quality": "low"})
    seen = set()

    def transcoded(j):
        if j.get("current_state") == "dispatch_transcoding" and j.get("progress_message", "").startswith("Step "):
            seen.add((round(j["progress"], 3), j["progress_message"]))
        return j["status"] in ("finished", "failed", "quarantined", "error") or (
            j.get("current_state") not in ("start", "check_user_preferences", "pre_processing_decision", "dispatch_transcoding")
        )

    d.client.wait(job_id, transcoded, timeout=20, every=0.05)
    assert len(seen) >= 3, seen
    for progress, message in seen:
        i = int(message.split()[1])
        assert progress == round(i / 5, 3) and message == f"Step {i} of 5 complete.", (progress, message)
    job = d.client.wait(job_id, timeout=20)
    assert job["status"] == "finished", job
    d.assert_no_protocol_errors()


@pytest.mark.parametrize(
    "trigger, status, state, attempts, message",
    [
        # A custom status follows its own route.
        ("needs_review", "failed", "manual_review", 1, None),
        # A permanent error follows the failure route at once.
        ("permanent", "failed", "transcoding_failed", 1, "not supported"),
        # A security error quarantines the job.
        ("security", "quarantined", "dispatch_transcoding", 1, "security scan"),
        # A handler exception (TRANSIENT_ERROR) is retried JOB_MAX_RETRIES
        # times, here always on the only GPU worker, then fails. The
        # retries' results are byte-identical when they come within one
        # second (the SDK's result has no attempt): each is still taken.
        ("transient", "failed", "transcoding_failed", 4, "GPU driver hiccup"),
        ("resource", "failed", "transcoding_failed", 4, "out of GPU memory"),
    ],
)
def test_outcomes(deploy, trigger, status, state, attempts, message):
    d = deploy()
    d.start_workers("gpu")
    job_id = d.client.create({"quality": "low", "trigger": trigger})
    job = d.client.wait(job_id, timeout=20)
    assert (job["status"], job["current_state"]) == (status, state), job
    tries = dispatches_of(job, "transcode_video")
    assert [t["attempt"] for t in tries] == list(range(1, attempts + 1)), tries
    assert {t["worker_id"] for t in tries} == {WORKER_IDS["gpu"]}
    if trigger == "needs_review":
        assert job["state_history"]["reason"] == "Low quality source detected"
    if message:
        assert message in job.get("error_message", ""), job
    d.assert_no_protocol_errors()


def test_transient_failure_retried_on_another_worker(deploy):
    """The unreliable worker's hardware fault is a transient error: the task
    is retried on another eligible worker, the job finishes, and the failure
    costs the unreliable worker reputation."""
    d = deploy()
    d.start_workers("cpu-unreliable", "cpu-reliable", "gpu", UNRELIABLE_FAIL_RATE="1")
    job_id = d.client.create(SEED_JOB)
    job = d.client.wait(job_id, timeout=30)
    assert job["status"] == "finished", job
    first = dispatches_of(job, "analyze_file")[0]  # the cheapest analysis, before the fan-out
    analysis = [t for t in dispatches_of(job, "analyze_file") if t["task_id"] == first["task_id"]]
    assert analysis[0]["worker_id"] == WORKER_IDS["cpu-unreliable"], analysis  # the cheapest worker
    assert [t["attempt"] for t in analysis] == [1, 2], analysis
    assert analysis[1]["worker_id"] != WORKER_IDS["cpu-unreliable"], analysis
    assert job["state_history"]["analysis"]["location"] == analysis[1]["worker_id"]
    reputation = {w["worker_id"]: w["reputation"] for w in d.client.workers()}
    assert reputation[WORKER_IDS["cpu-unreliable"]] < reputation[WORKER_IDS["cpu-reliable"]], reputation
    d.assert_no_protocol_errors()
