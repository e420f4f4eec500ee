"""Files through S3 (MinIO): the Python SDK downloads the s3:// inputs of a
task before the handler runs and uploads the files the handler returns,
against our orchestrator configured with the same bucket."""

from __future__ import annotations

import hashlib
import os
import secrets
import urllib.request

import pytest

S3_ENDPOINT = os.environ.get("AVTO_TEST_S3_ENDPOINT", "")
S3_KEY = os.environ.get("AVTO_TEST_S3_ACCESS_KEY", "minioadmin")
S3_SECRET = os.environ.get("AVTO_TEST_S3_SECRET_KEY", "minioadmin")


def s3_reachable() -> bool:
    try:
        with urllib.request.urlopen(S3_ENDPOINT.rstrip("/") + "/minio/health/live", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


@pytest.fixture
def s3():
    if not S3_ENDPOINT or not s3_reachable():
        why = f"S3 is not reachable (AVTO_TEST_S3_ENDPOINT={S3_ENDPOINT!r})"
        if os.environ.get("AVTO_REQUIRE_SERVICES") == "1":
            pytest.fail(why + " and AVTO_REQUIRE_SERVICES=1")
        pytest.skip(why + ": the S3 hand-over is NOT tested")
    from obstore.store import S3Store

    bucket = "compat-" + secrets.token_hex(4)
    env = {
        "S3_ENDPOINT_URL": S3_ENDPOINT,
        "S3_ACCESS_KEY": S3_KEY,
        "S3_SECRET_KEY": S3_SECRET,
        "S3_DEFAULT_BUCKET": bucket,
        "S3_REGION": "us-east-1",
    }

    def store():
        return S3Store(
            bucket,
            endpoint=S3_ENDPOINT,
            access_key_id=S3_KEY,
            secret_access_key=S3_SECRET,
            region="us-east-1",
            allow_http=True,
        )

    yield env, bucket, store


def run_report_job(d, bucket, store, inputs):
    job_id = d.client.create({"quality": "low", "blob_report": True, "inputs": inputs})
    job = d.client.wait(job_id, timeout=30)
    return job_id, job


def test_s3_output_upload(deploy, s3):
    """A file the handler returns (a path under TASK_FILES_DIR) is uploaded
    by the SDK and its s3:// URI reaches the job's state_history."""
    import obstore

    env, bucket, store = s3
    # The orchestrator creates the bucket when it starts.
    d = deploy(orchestrator_env={**env, "S3_FORCE_PATH_STYLE": "true"})
    d.start_workers("gpu", "cpu-reliable", **env)
    job_id, job = run_report_job(d, bucket, store, [])
    assert job["status"] == "finished", job

    # The SDK uploaded the returned file to s3://<bucket>/<job_id>/<name>
    # (the upstream prefix; ours is jobs/<job_id>/) and put its URI in the
    # result.
    uri = job["state_history"]["report_path"]
    assert uri == f"s3://{bucket}/{job_id}/report-{job_id}.txt", uri
    report = bytes(obstore.get(store(), f"{job_id}/report-{job_id}.txt").bytes()).decode()
    assert f"report for job {job_id}" in report
    assert "analysis: 3 files" in report
    # The task's folder is gone.
    files = d.root / "task-files-gpu"
    assert not files.exists() or not any(files.iterdir()), list(files.iterdir())
    d.assert_no_protocol_errors()


@pytest.mark.xfail(
    reason="upstream SDK bug, not our server: avtomatika_worker.s3 (1.0b17 and 1.0b20) awaits obstore.get, "
    "which is synchronous in every obstore the SDK allows (TypeError: GetResult can't be used in 'await' "
    "expression), so no s3:// input is ever downloaded and the task fails with TRANSIENT_ERROR",
    strict=True,
)
def test_s3_input_download(deploy, s3):
    """An s3:// URI in the task's params reaches the handler as a local file
    with the object's bytes."""
    import obstore

    env, bucket, store = s3
    d = deploy(orchestrator_env={**env, "S3_FORCE_PATH_STYLE": "true"})
    d.start_workers("gpu", "cpu-reliable", **env)
    data = secrets.token_bytes(4096)
    obstore.put(store(), "inputs/clip.bin", data)
    job_id, job = run_report_job(d, bucket, store, [f"s3://{bucket}/inputs/clip.bin"])
    assert job["status"] == "finished", (job["status"], job.get("error_message"))
    assert job["state_history"]["inputs"] == 1
    report = bytes(obstore.get(store(), f"{job_id}/report-{job_id}.txt").bytes()).decode()
    assert f"input clip.bin: 4096 bytes, sha256 {hashlib.sha256(data).hexdigest()}" in report, report
    d.assert_no_protocol_errors()
