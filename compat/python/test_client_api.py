"""The client API as Python clients call it: the create body's two forms,
and upstream's routes (dashboard, worker catalog, quarantined jobs, reload
of the worker configuration)."""

from __future__ import annotations

import json
import urllib.request

from harness import Client, wait_until


def test_create_body_forms(deploy):
    """A body without the initial_data wrapper is the input itself; a
    misspelt top-level field of the wrapper is refused by name and creates
    nothing; upstream's other create fields are accepted."""
    d = deploy()
    c = d.client
    status, resp = c.request("POST", "/api/v1/jobs/full_showcase", {"quality": "low", "path": "/in.mp4"})
    assert status == 202, (status, resp)
    assert c.job(resp["job_id"])["initial_data"] == {"quality": "low", "path": "/in.mp4"}

    status, resp = c.request(
        "POST", "/api/v1/jobs/full_showcase", {"initial_data": {"quality": "low"}, "dispatch_timeout": 30, "metadata": {"m": 1}}
    )
    assert status == 202, (status, resp)
    assert c.job(resp["job_id"])["initial_data"] == {"quality": "low"}

    status, resp = c.request("GET", "/api/v1/jobs")
    before = len(resp["jobs"])
    status, resp = c.request("POST", "/api/v1/jobs/full_showcase", {"initial_data": {"quality": "low"}, "webhok_url": "http://x/"})
    assert status == 400 and 'unknown field "webhok_url"' in resp["error"], (status, resp)
    status, resp = c.request("GET", "/api/v1/jobs")
    assert len(resp["jobs"]) == before, resp


def test_upstream_routes(deploy):
    """Upstream's dashboard, worker catalog, quarantined-jobs list and
    reload-workers routes, with a Python SDK worker registered: only the
    caller's jobs are listed, and reloading needs the admin token."""
    d = deploy({"ADMIN_TOKEN": "compat-admin"})
    d.start_workers("gpu")
    c = d.client
    job_id = c.create({"quality": "low", "trigger": "security"})
    assert c.wait(job_id, timeout=20)["status"] == "quarantined"

    for path in ("/_public/jobs/quarantined", "/api/v1/jobs/quarantined"):
        status, jobs = c.request("GET", path)
        assert status == 200 and [j["id"] for j in jobs] == [job_id], (path, status, jobs)
        assert jobs[0]["status"] == "quarantined"
    status, resp = Client(d.url, token="").request("GET", "/_public/jobs/quarantined")
    assert status == 401, (status, resp)

    status, dash = c.request("GET", "/api/v1/dashboard")
    assert status == 200, (status, dash)
    assert dash["workers"]["total"] == 1 and dash["jobs"]["quarantined"] == 1 and "queued" in dash["jobs"], dash

    status, catalog = c.request("GET", "/api/v1/workers/catalog")
    assert status == 200, (status, catalog)
    entry = catalog["transcode_video"]
    assert entry["providers_count"] == 1 and entry["contract"]["name"] == "transcode_video", entry
    assert 0 < entry["average_reputation"] <= 1 and entry["worker_types"], entry

    status, resp = c.request("POST", "/api/v1/admin/reload-workers")
    assert status == 403, (status, resp)
    req = urllib.request.Request(d.url + "/api/v1/admin/reload-workers", data=b"", method="POST")
    req.add_header("X-Admin-Token", "compat-admin")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200 and json.loads(r.read())["status"] == "worker_configs_reloaded"
    d.assert_no_protocol_errors()


def test_approval_url(deploy, webhook):
    """A job waiting for a human shows its owner a single-use approval URL,
    and its webhook announces it (job_waiting_for_human); a POST to it with
    the decision and no client token approves, and a second one is
    refused."""
    d = deploy({"PUBLIC_URL": "http://orchestrator.example"})
    d.start_workers("gpu", STEP_SECONDS="0.1")
    c = d.client
    job_id = c.create({"quality": "high", "needs_approval": True}, webhook_url=webhook.url)
    job = c.wait(job_id, lambda j: j["status"] == "waiting_for_human", timeout=20)
    approval = job["approval"]
    assert approval["url"].startswith(f"http://orchestrator.example/_public/webhooks/approval/{job_id}?token="), approval
    assert approval["expires_at"], approval
    hooks = wait_until("the approval webhook", lambda: webhook.for_job(job_id), timeout=10)
    assert hooks[0]["json"]["event"] == "job_waiting_for_human", hooks[0]["json"]
    assert hooks[0]["json"]["approval"]["url"] == approval["url"], hooks[0]["json"]
    path = approval["url"].removeprefix("http://orchestrator.example")
    anonymous = Client(d.url, token="")
    status, resp = anonymous.request("POST", path, {"decision": "approved"})
    assert status == 200 and resp["status"] == "approval_received", (status, resp)
    assert c.wait(job_id, timeout=20)["status"] == "finished"
    status, resp = anonymous.request("POST", path, {"decision": "rejected"})
    assert status == 403, (status, resp)
