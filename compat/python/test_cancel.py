"""Cancelling a job reaches the Python worker running its task: over the
WebSocket when the worker opened one, else through the heartbeat's
cancel_task_ids."""

from __future__ import annotations

import pytest

from harness import wait_until


@pytest.mark.parametrize(
    "websockets, heartbeat, how",
    [
        # Heartbeats every 30 s: only the WebSocket can be that quick.
        ("true", "30", "by command"),
        ("false", "1", "via heartbeat feedback loop"),
    ],
    ids=["websocket", "heartbeat"],
)
def test_cancel_running_task(deploy, websockets, heartbeat, how):
    d = deploy()
    d.start_workers("gpu", WORKER_ENABLE_WEBSOCKETS=websockets, HEARTBEAT_INTERVAL=heartbeat)
    job_id = d.client.create({"quality": "low", "trigger": "slow"})  # 200 steps of 0.1 s
    job = d.client.wait(job_id, lambda j: j.get("progress", 0) > 0 and j.get("progress_message", "").startswith("Step"))
    task_id = next(t["id"] for t in job["tasks"] if t["type"] == "transcode_video")

    status, resp = d.client.cancel(job_id)
    assert status == 200, (status, resp)
    job = d.client.wait(job_id, timeout=5)
    assert job["status"] == "cancelled", job

    # The handler saw CancelledError (it leaves a marker), and the SDK says
    # how it learnt of the cancellation.
    marker = d.markers / f"cancelled-{task_id}"
    wait_until(f"the worker to cancel task {task_id}", marker.exists, timeout=8)
    log = d.workers["gpu"].output()
    assert task_id in log and how in log, log[-3000:]
    # The worker's "cancelled" result for the cancelled job is ignored, not
    # refused, and the job stays cancelled.
    wait_until("the cancelled result", lambda: "job_cancelled" in d.workers["gpu"].output(), timeout=20)  # the SDK sends it after its handler unwinds; slow on a loaded machine
    assert d.client.job(job_id)["status"] == "cancelled"
    d.assert_no_protocol_errors()
