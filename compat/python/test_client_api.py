"""The client API as Python clients call it: the create body's two forms,
and upstream's routes (dashboard, worker catalog, quarantined jobs, reload
of the worker configuration)."""

from __future__ import annotations


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
