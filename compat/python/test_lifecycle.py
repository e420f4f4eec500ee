"""Registration and the signed-message checks, against the SDK's workers and
its protocol library (rxon)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

from rxon.security import sign_payload

from harness import GLOBAL_WORKER_TOKEN, WORKER_IDS, wait_until


def test_reregistration_after_orchestrator_restart(deploy):
    """An orchestrator on the in-memory store restarts and forgets its
    workers: their next heartbeat is told "Worker not found: register
    again", the SDK registers again, and jobs run as before."""
    d = deploy()
    d.start_workers("gpu", "cpu-reliable")
    job = d.client.wait(d.client.create({"quality": "low"}), timeout=20)
    assert job["status"] == "finished", job

    d.restart_orchestrator()
    d.wait_workers_idle("gpu", "cpu-reliable", timeout=20)
    job = d.client.wait(d.client.create({"quality": "low"}), timeout=20)
    assert job["status"] == "finished", job
    assert {a["location"] for a in job["state_history"]["analysis_summary"].values()} <= {
        WORKER_IDS["gpu"],
        WORKER_IDS["cpu-reliable"],
    }
    # What the workers were told while the orchestrator did not know them.
    for kind in ("gpu", "cpu-reliable"):
        errors = d.protocol_errors(kind)
        assert errors, f"worker {kind} never learnt that the orchestrator forgot it"
        assert all(e.startswith("HTTP 404") and "register again" in e for e in errors), errors
        assert "Re-registering" in d.workers[kind].output()


def post(url: str, method: str, body: dict, worker_id: str, token: str):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method=method)
    req.add_header("Content-Type", "application/json")
    req.add_header("X-Worker-Token", token)
    req.add_header("X-Worker-ID", worker_id)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def signed(body: dict, worker_id: str) -> dict:
    """Signs a message as the RXON library does (HMAC over canonical JSON)."""
    sig = sign_payload(body, GLOBAL_WORKER_TOKEN)
    return {**body, "security": {"signature": sig, "signer_id": worker_id}}


def test_float_timestamps_of_older_rxon(deploy):
    """RXON versions before 1.0b14 sent time.time(): a float timestamp is
    accepted (rounded) within the window and refused outside it."""
    d = deploy()
    wid = "legacy-worker-01"
    reg = {
        "worker_id": wid,
        "worker_type": "legacy",
        "supported_skills": [{"name": "analyze_file", "type": "analyze_file", "schema_dialect": "json-schema"}],
        "capabilities": {"hostname": "legacy", "ip_address": "127.0.0.1", "cost_per_skill": {"analyze_file": 0.001}},
    }
    status, resp = post(d.url + "/_worker/workers/register", "POST", signed({**reg, "timestamp": time.time() - 90.5}, wid), wid, GLOBAL_WORKER_TOKEN)
    assert status == 403 and "expired" in resp["error"], (status, resp)
    now = time.time()
    assert now != int(now)  # a float on the wire
    status, resp = post(d.url + "/_worker/workers/register", "POST", signed({**reg, "timestamp": now}, wid), wid, GLOBAL_WORKER_TOKEN)
    assert status == 200 and resp["status"] == "registered", (status, resp)
    hb = {"worker_id": wid, "status": "idle", "available_skills": ["analyze_file"], "timestamp": time.time() + 0.25}
    status, resp = post(d.url + f"/_worker/workers/{wid}", "PATCH", signed(hb, wid), wid, GLOBAL_WORKER_TOKEN)
    assert status == 200 and resp["status"] == "ok", (status, resp)
    assert any(w["worker_id"] == wid and w["status"] == "idle" for w in d.client.workers())


def test_identical_heartbeats_are_acknowledged(deploy):
    """The SDK may send a periodic and a state-change heartbeat in the same
    second with the same content: both are answered 200, not 409."""
    d = deploy()
    wid = "twin-heartbeat-01"
    reg = {"worker_id": wid, "supported_skills": [{"name": "analyze_file"}], "timestamp": int(time.time())}
    status, resp = post(d.url + "/_worker/workers/register", "POST", signed(reg, wid), wid, GLOBAL_WORKER_TOKEN)
    assert status == 200, (status, resp)
    hb = signed({"worker_id": wid, "status": "idle", "current_tasks": [], "timestamp": int(time.time())}, wid)
    for copy in (1, 2):
        status, resp = post(d.url + f"/_worker/workers/{wid}", "PATCH", hb, wid, GLOBAL_WORKER_TOKEN)
        assert status == 200 and resp["status"] == "ok", (copy, status, resp)
    # A registration is not a heartbeat: the same bytes twice are a replay.
    again = signed({**reg, "worker_type": "twin", "timestamp": int(time.time())}, wid)
    assert post(d.url + "/_worker/workers/register", "POST", again, wid, GLOBAL_WORKER_TOKEN)[0] == 200
    status, resp = post(d.url + "/_worker/workers/register", "POST", again, wid, GLOBAL_WORKER_TOKEN)
    assert status == 409 and "Replayed" in resp["error"], (status, resp)


def test_workers_register_with_their_hardware(deploy):
    """What the SDK registers is what the API shows: skills, prices, GPU."""
    d = deploy()
    d.start_workers("gpu", "cpu-unreliable")
    workers = {w["worker_id"]: w for w in d.client.workers()}
    gpu = workers[WORKER_IDS["gpu"]]
    assert {s["name"] for s in gpu["supported_skills"]} == {"transcode_video", "analyze_file", "process_blobs"}
    assert gpu["cost_per_skill"]["transcode_video"] == 0.0005
    devices = gpu["resources"]["devices"]
    assert devices[0]["model"] == "NVIDIA T4" and devices[0]["properties"]["memory_gb"] == 16, devices
    cpu = workers[WORKER_IDS["cpu-unreliable"]]
    assert cpu["cost_per_skill"] == {"analyze_file": 0.00005}
    wait_until("a heartbeat", lambda: all(w.get("last_seen") for w in d.client.workers()))
    d.assert_no_protocol_errors()


def test_default_heartbeats_keep_a_worker_registered(deploy):
    """With the SDK's default heartbeat interval (15 s) and the
    orchestrator's default worker TTL, an idle worker stays registered and
    idle for longer than both, and then takes a job at once."""
    d = deploy()
    d.start_worker("gpu", HEARTBEAT_INTERVAL="15", IDLE_POLL_DELAY="0.5")
    d.start_workers("cpu-reliable", HEARTBEAT_INTERVAL="15", IDLE_POLL_DELAY="0.5")
    d.wait_workers_idle("gpu")
    gaps = []
    deadline = time.monotonic() + 35
    while time.monotonic() < deadline:
        idle = {w["worker_id"] for w in d.client.workers() if w.get("status") == "idle"}
        if idle != {WORKER_IDS["gpu"], WORKER_IDS["cpu-reliable"]}:
            gaps.append((round(35 - (deadline - time.monotonic()), 1), sorted(idle)))
        time.sleep(0.5)
    assert not gaps, f"workers were not idle and registered throughout: {gaps[:10]}"
    job = d.client.wait(d.client.create({"quality": "low"}), timeout=20)
    assert job["status"] == "finished", job
    for kind in ("gpu", "cpu-reliable"):
        assert "Re-registering" not in d.workers[kind].output()
    d.assert_no_protocol_errors()
