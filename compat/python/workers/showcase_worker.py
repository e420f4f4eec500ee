"""The showcase's three workers, written with the upstream Python SDK
(avtomatika-worker) as a user of that SDK would write them.

    python showcase_worker.py gpu|cpu-reliable|cpu-unreliable

Each kind has the identity, token, prices and hardware of the showcase
(SHOWCASE.md, "Workers"); the SDK's usual environment variables override
them. A few variables of this script steer the simulation so that tests
are deterministic:

    STEP_SECONDS          seconds per transcoding step (default 0.1)
    ANALYZE_SECONDS       seconds per analysis (default 0.1)
    UNRELIABLE_FAIL_RATE  share of analyses the unreliable worker fails (0.5)
    MARKER_DIR            where a cancelled task leaves a file named after it

The transcoding's params.trigger picks an outcome: "transient" (an
exception: the SDK reports TRANSIENT_ERROR), "permanent", "security",
"resource" (error envelopes with those codes), "needs_review" (a custom
status), "slow" (many steps, for cancellation), anything else: success.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import sys
import time
from datetime import UTC, datetime

KINDS = {
    "gpu": {
        "WORKER_ID": "gpu-worker-01",
        "WORKER_TOKEN": "super-secret-gpu-worker-token",
        "COST_PER_SKILL": '{"transcode_video": 0.0005, "analyze_file": 0.0001, "process_blobs": 0.0002}',
        "MAX_CONCURRENT_TASKS": "2",
        "CPU_CORES": "8",
        "RAM_GB": "32",
        "GPU_MODEL": "NVIDIA T4",
        "GPU_VRAM_GB": "16",
        "INSTALLED_SOFTWARE": '{"ffmpeg": "5.1"}',
        "INSTALLED_ARTIFACTS": '[{"name": "stable-diffusion-1.5", "version": "1.5", "type": "model"}]',
        "WORKER_ENABLE_WEBSOCKETS": "true",
    },
    "cpu-reliable": {
        "WORKER_ID": "cpu-worker-02",
        "WORKER_TOKEN": "super-secret-cpu-worker-token-2",
        "COST_PER_SKILL": '{"analyze_file": 0.0001}',
        "MAX_CONCURRENT_TASKS": "4",
        "CPU_CORES": "4",
        "RAM_GB": "8",
        "WORKER_ENABLE_WEBSOCKETS": "true",
    },
    "cpu-unreliable": {
        "WORKER_ID": "cpu-worker-01",
        "WORKER_TOKEN": "super-secret-cpu-worker-token",
        "COST_PER_SKILL": '{"analyze_file": 0.00005}',
        "MAX_CONCURRENT_TASKS": "4",
        "CPU_CORES": "4",
        "RAM_GB": "8",
        "WORKER_ENABLE_WEBSOCKETS": "true",
    },
}
WORKER_TYPES = {"gpu": "gpu_worker", "cpu-reliable": "cpu_worker", "cpu-unreliable": "cpu_worker"}

if len(sys.argv) != 2 or sys.argv[1] not in KINDS:
    sys.exit(f"usage: {sys.argv[0]} {'|'.join(KINDS)}")
KIND = sys.argv[1]
for key, value in KINDS[KIND].items():
    os.environ.setdefault(key, value)

# The SDK reads its configuration from the environment when it is imported
# and constructed, so the defaults above go in first.
from avtomatika_worker import Worker  # noqa: E402
from avtomatika_worker.task_files import TaskFiles  # noqa: E402

STEP_SECONDS = float(os.getenv("STEP_SECONDS", "0.1"))
ANALYZE_SECONDS = float(os.getenv("ANALYZE_SECONDS", "0.1"))
UNRELIABLE_FAIL_RATE = float(os.getenv("UNRELIABLE_FAIL_RATE", "0.5"))
MARKER_DIR = os.getenv("MARKER_DIR", "")
WORKER_ID = os.environ["WORKER_ID"]

worker = Worker(worker_type=WORKER_TYPES[KIND])


def mark(name: str, text: str) -> None:
    """Leaves a file for the tests (what a real worker would log)."""
    if MARKER_DIR:
        with open(os.path.join(MARKER_DIR, name), "w") as f:
            f.write(text)


async def analyze_file(params: dict, task_id: str):
    """Analyses one file of the video."""
    name = params.get("file_name", "unknown")
    await asyncio.sleep(ANALYZE_SECONDS)
    if KIND == "cpu-unreliable" and random.random() < UNRELIABLE_FAIL_RATE:
        # A fault of the hardware, not of the input: the SDK reports an
        # uncaught exception as TRANSIENT_ERROR.
        raise RuntimeError("Simulated unreliable hardware")
    codec = {"aac": "aac", "h264": "h264", "srt": "subrip"}.get(name.rsplit(".", 1)[-1], "unknown")
    size = int(hashlib.sha256(name.encode()).hexdigest()[:4], 16) % 1000 + 100
    return {"data": {"analysis": {"file_name": name, "size_kb": size, "codec": codec, "location": WORKER_ID}}}


worker.skill("analyze_file")(analyze_file)

if KIND == "gpu":

    @worker.skill("transcode_video", output_statuses=["success", "failure", "needs_review"])
    async def transcode_video(params: dict, task_id: str, job_id: str, send_progress):
        """Transcodes a video on the GPU."""
        trigger = params.get("trigger") or ""
        if trigger == "transient":
            raise RuntimeError("GPU driver hiccup (triggered)")
        errors = {
            "permanent": ("PERMANENT_ERROR", "the source codec is not supported (triggered)"),
            "security": ("SECURITY_ERROR", "the input failed a security scan (triggered)"),
            "resource": ("RESOURCE_EXHAUSTED_ERROR", "out of GPU memory (triggered)"),
        }
        if trigger in errors:
            code, message = errors[trigger]
            return {"status": "failure", "error": {"code": code, "message": message}}
        steps = 200 if trigger == "slow" else 5
        try:
            for i in range(1, steps + 1):
                await asyncio.sleep(STEP_SECONDS)
                await send_progress(task_id, job_id, i / steps, f"Step {i} of {steps} complete.")
        except asyncio.CancelledError:
            mark(f"cancelled-{task_id}", f"cancelled at {time.time()}")
            raise
        if trigger == "needs_review":
            return {"status": "needs_review", "data": {"reason": "Low quality source detected"}}
        return {"data": {"output_path": "/path/to/transcoded.mp4", "duration": 120}}

    @worker.skill("process_blobs")
    async def process_blobs(params: dict, task_id: str, job_id: str, files: TaskFiles):
        """Writes a report of the analysis and of the input files."""
        lines = [
            f"report for job {job_id}",
            f"video: {params.get('video_id')}",
            f"created: {datetime.now(UTC).isoformat()}",
            f"analysis: {len(params.get('analysis_summary') or {})} files",
        ]
        inputs = params.get("inputs") or []
        for path in inputs:
            # The SDK downloaded every s3:// URI into the task's folder.
            with open(path, "rb") as f:
                data = f.read()
            lines.append(f"input {os.path.basename(path)}: {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}")
        report = await files.path_to(f"report-{job_id}.txt")
        with open(report, "w") as f:
            f.write("\n".join(lines) + "\n")
        # A path under TASK_FILES_DIR: the SDK uploads it and returns its URI.
        return {"data": {"report_path": report, "inputs": len(inputs)}}


if __name__ == "__main__":
    worker.run()
