"""RXON 1.0b17 features with the SDK that has them (1.0b20) and without
(1.0b17): orchestrator-signed tasks, job policies (allowed_skills) and the
protocol version."""

from __future__ import annotations

from importlib.metadata import version

import pytest
from packaging.version import Version

from harness import wait_until

KEY = "compat-orchestrator-secret"
NEWEST_SDK = Version(version("avtomatika-worker")) >= Version("1.0b20")
ALL = ("gpu", "cpu-reliable", "cpu-unreliable")
SEED_JOB = {"path": "/s3/bucket/input.mp4", "quality": "high", "use_advanced_dispatch": True}


def test_signed_tasks(deploy):
    """With ORCHESTRATOR_SECRET_KEY on both sides every task is signed: the
    SDK 1.0b20 refuses unsigned tasks when it holds a key, so the seed's job
    finishing shows each signature verified (1.0b17 ignores them)."""
    d = deploy({"ORCHESTRATOR_SECRET_KEY": KEY})
    d.start_workers(*ALL, ORCHESTRATOR_SECRET_KEY=KEY, STEP_SECONDS="0.1")
    job = d.client.wait(d.client.create(SEED_JOB), timeout=30)
    assert job["status"] == "finished", job
    for kind in ALL:
        assert "signature" not in d.workers[kind].output(), d.workers[kind].output()[-2000:]
    d.assert_no_protocol_errors()


@pytest.mark.skipif(not NEWEST_SDK, reason="SDK 1.0b17 does not check task signatures")
def test_task_signed_with_another_key_is_refused(deploy):
    """A worker holding another key refuses the orchestrator's task."""
    d = deploy({"ORCHESTRATOR_SECRET_KEY": KEY})
    d.start_workers("gpu", ORCHESTRATOR_SECRET_KEY="another-key")
    d.client.create({"quality": "low"})
    wait_until("the refusal", lambda: "orchestrator signature verification failed" in d.workers["gpu"].output(), timeout=20)


def test_no_version_mismatch(deploy):
    """The orchestrator answers each SDK in the RXON version it speaks: no
    mismatch warning in the worker's log."""
    d = deploy()
    d.start_workers("gpu")
    job = d.client.wait(d.client.create({"quality": "low"}), timeout=20)
    assert job["status"] == "finished", job
    assert "Version Mismatch" not in d.workers["gpu"].output(), d.workers["gpu"].output()[-2000:]


def test_policy(deploy):
    """A job's policy reaches the SDK with each task (1.0b20 checks the
    task's type against allowed_skills, 1.0b17 ignores it); a job whose
    blueprint dispatches a type its policy leaves out fails, naming it."""
    d = deploy()
    d.start_workers(*ALL, STEP_SECONDS="0.1")
    c = d.client
    status, resp = c.request(
        "POST", "/api/v1/jobs/full_showcase", {"initial_data": SEED_JOB, "policy": {"allowed_skills": ["analyze_file", "transcode_video"]}}
    )
    assert status == 202, (status, resp)
    job = c.wait(resp["job_id"], timeout=30)
    assert job["status"] == "finished", job
    assert job["policy"] == {"allowed_skills": ["analyze_file", "transcode_video"]}, job

    status, resp = c.request("POST", "/api/v1/jobs/full_showcase", {"initial_data": SEED_JOB, "policy": {"allowed_skills": ["analyze_file"]}})
    assert status == 202, (status, resp)
    job = c.wait(resp["job_id"], timeout=30)
    assert job["status"] == "failed" and '"transcode_video"' in job["error_message"], job

    status, resp = c.request("POST", "/api/v1/jobs/full_showcase", {"initial_data": SEED_JOB, "policy": {"allowed_skills": []}})
    assert status == 400 and "non-empty list" in resp["error"], (status, resp)
    d.assert_no_protocol_errors()


def test_costs(deploy):
    """The costs the SDK reports with each result (1.0b20: at least
    execution_time_seconds) are summed in the job and kept per result in
    its history; 1.0b17 reports none."""
    d = deploy()
    d.start_workers(*ALL, STEP_SECONDS="0.1")
    job = d.client.wait(d.client.create(SEED_JOB), timeout=30)
    assert job["status"] == "finished", job
    status, events = d.client.request("GET", f"/api/v1/jobs/{job['id']}/history")
    assert status == 200, (status, events)
    per_result = [e["detail"]["costs"] for e in events if e["event_type"] == "task_result" and "costs" in e.get("detail", {})]
    if not NEWEST_SDK:
        assert "costs" not in job and not per_result, (job.get("costs"), per_result)
        return
    results = [e for e in events if e["event_type"] == "task_result"]
    assert len(per_result) == len(results) > 1, results
    total = sum(c["execution_time_seconds"] for c in per_result)
    assert job["costs"]["execution_time_seconds"] == pytest.approx(total), (job["costs"], per_result)
