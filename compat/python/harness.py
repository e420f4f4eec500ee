"""Processes and clients for the Python compatibility suite.

The orchestrator is our Go showcase binary run as `showcase orchestrator`
(the showcase's blueprints, no Go workers); the workers are Python processes
built on the upstream SDK (workers/showcase_worker.py); the client speaks the
client API over plain HTTP, as the seed's client does.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKER_SCRIPT = HERE / "workers" / "showcase_worker.py"

CLIENT_TOKEN = "user_token_vip"
GLOBAL_WORKER_TOKEN = "super-secret-worker-token"
WEBHOOK_SECRET = "showcase-webhook-secret"
WORKER_IDS = {"gpu": "gpu-worker-01", "cpu-reliable": "cpu-worker-02", "cpu-unreliable": "cpu-worker-01"}
TERMINAL = {"finished", "failed", "cancelled", "error", "quarantined"}

# What a process inherits from the test's environment; the rest is set
# explicitly, so that nothing of the caller's (WORKER_TOKEN, S3_*,
# SECRET_KEY, ...) changes a worker's behaviour.
INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT", "VIRTUAL_ENV")


def free_port() -> int:
    """A port free on every interface, below the kernel's ephemeral range
    (where outgoing connections, ours included, would take it meanwhile)."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 32000)
        try:
            with socket.socket(socket.AF_INET6 if socket.has_ipv6 else socket.AF_INET) as s:
                s.bind(("", port))
            return port
        except OSError:
            continue
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what: str, cond, timeout: float = 10.0, every: float = 0.05):
    """Polls cond until it returns a true value, which is returned."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


class Process:
    """A child process whose output goes to a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path, cwd: Path):
        self.name, self.args, self.env, self.log_path, self.cwd = name, args, env, log, cwd
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            log.write(f"--- start {self.name}: {' '.join(self.args)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.args, env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (a graceful shutdown), then SIGKILL after timeout."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


class Client:
    """The client API, as the seed's client uses it."""

    def __init__(self, base: str, token: str = CLIENT_TOKEN):
        self.base, self.token = base.rstrip("/"), token

    def request(self, method: str, path: str, body=None, timeout: float = 10.0):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("X-Client-Token", self.token)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw = resp.read()
                return resp.status, (json.loads(raw) if raw else None)
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, raw.decode(errors="replace")

    def create(self, initial_data: dict, webhook_url: str | None = None, endpoint: str = "/jobs/full_showcase") -> str:
        body = {"initial_data": initial_data}
        if webhook_url:
            body["webhook_url"] = webhook_url
        status, resp = self.request("POST", "/api/v1" + endpoint, body)
        assert status == 202 and resp["status"] == "accepted", (status, resp)
        return resp["job_id"]

    def job(self, job_id: str) -> dict:
        status, resp = self.request("GET", f"/api/v1/jobs/{job_id}")
        assert status == 200, (status, resp)
        return resp

    def wait(self, job_id: str, cond=lambda j: j["status"] in TERMINAL, timeout: float = 30.0, every: float = 0.1) -> dict:
        last = {}

        def check():
            nonlocal last
            last = self.job(job_id)
            return last if cond(last) else None

        try:
            return wait_until(f"job {job_id}", check, timeout, every)
        except AssertionError as e:
            raise AssertionError(f"{e}; last seen: {json.dumps(last, indent=1)[:3000]}") from None

    def cancel(self, job_id: str):
        return self.request("POST", f"/api/v1/jobs/{job_id}/cancel", {})

    def workers(self) -> list[dict]:
        status, resp = self.request("GET", "/api/v1/workers")
        assert status == 200, (status, resp)
        return resp


class WebhookReceiver:
    """An HTTP server that records every webhook it receives."""

    def __init__(self):
        self.received: list[dict] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with outer.lock:
                    outer.received.append({"path": self.path, "headers": dict(self.headers), "body": body})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def for_job(self, job_id: str) -> list[dict]:
        with self.lock:
            out = []
            for r in self.received:
                payload = json.loads(r["body"])
                if payload.get("job_id") == job_id:
                    out.append({**r, "json": payload})
            return out


def webhook_signature_ok(headers: dict, body: bytes, secret: str = WEBHOOK_SECRET) -> bool:
    """Checks X-Avtomatika-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">."""
    header = {k.lower(): v for k, v in headers.items()}.get("x-avtomatika-signature", "")
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    if "t" not in parts or "v1" not in parts:
        return False
    want = hmac.new(secret.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, parts["v1"])


# Lines of a worker's log where the orchestrator answered an SDK request
# with an HTTP error (the RXON transport words them "HTTP <code>: <body>").
PROTOCOL_ERROR = re.compile(r"HTTP (4\d\d|5\d\d): .*")


class Deployment:
    """One orchestrator and the Python workers of a test, in a folder."""

    def __init__(self, binary: str, root: Path, webhook_url: str, orchestrator_env: dict | None = None):
        self.binary, self.root = binary, root
        self.markers = root / "markers"
        self.markers.mkdir(parents=True, exist_ok=True)
        schedules = root / "schedules.toml"
        schedules.write_text("# no schedules: the suite drives full_showcase only\n")
        base = {k: os.environ[k] for k in INHERITED if k in os.environ}
        self.orchestrator_env = {
            **base,
            "WEBHOOK_URL": webhook_url,
            "SCHEDULES_CONFIG_PATH": str(schedules),
            "HISTORY_DATABASE_URI": f"sqlite:{root / 'history.db'}",
            "BLOB_DIR": str(root / "blobs"),
            "DETERMINISTIC_BLUEPRINT": "true",
            "SHOWCASE_TIME_SCALE": "0.2",
            "RETRY_BACKOFF_SECONDS": "0.05",
            "RETRY_BACKOFF_MAX_SECONDS": "0.2",
            "SHUTDOWN_TIMEOUT_SECONDS": "5",
            "LOG_LEVEL": "INFO",
            "LOG_FORMAT": "text",
            **(orchestrator_env or {}),
        }
        self.workers: dict[str, Process] = {}
        self.orchestrator = Process("orchestrator", [binary, "orchestrator"], self.orchestrator_env, root / "orchestrator.log", root)
        self.use_port(free_port())

    def use_port(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.orchestrator_env.update({"API_PORT": str(port), "ORCHESTRATOR_URL": self.url})
        self.client = Client(self.url)

    # --- the orchestrator ---

    def start_orchestrator(self, same_port: bool = False) -> None:
        """Starts the orchestrator and waits until it answers. A port taken
        meanwhile by another process is replaced by a new one, or, for a
        restart (same_port: the workers know it), waited for."""
        for attempt in range(10):
            self.orchestrator = Process(
                "orchestrator", [self.binary, "orchestrator"], self.orchestrator_env, self.root / "orchestrator.log", self.root
            )
            log_start = len(self.orchestrator.output())
            self.orchestrator.start()

            def up():
                if not self.orchestrator.alive():
                    return "exited"
                if "orchestrator listening" not in self.orchestrator.output()[log_start:]:
                    return None  # whatever answers on the port is not ours yet
                try:
                    with urllib.request.urlopen(self.url + "/_public/status", timeout=1) as r:
                        return "up" if r.status == 200 else None
                except OSError:
                    return None

            if wait_until("the orchestrator", up, timeout=30) == "up":
                return
            out = self.orchestrator.output()[log_start:]
            if "address already in use" not in out or attempt == 9:
                raise AssertionError(f"the orchestrator exited:\n{out[-3000:]}")
            if same_port:
                time.sleep(0.5)
            else:
                self.use_port(free_port())

    def restart_orchestrator(self) -> None:
        self.orchestrator.stop()
        self.start_orchestrator(same_port=True)

    # --- workers ---

    def worker_env(self, kind: str, **overrides: str) -> dict[str, str]:
        base = {k: os.environ[k] for k in INHERITED if k in os.environ}
        env = {
            **base,
            "PYTHONUNBUFFERED": "1",
            "ORCHESTRATOR_URL": self.url,
            "HEARTBEAT_INTERVAL": "1",
            "WORKER_HEARTBEAT_COOLDOWN": "0.2",
            "IDLE_POLL_DELAY": "0.05",
            "POLL_BACKOFF_MAX": "1",
            "REGISTRATION_RETRY_MAX_DELAY": "1",
            "RESULT_RETRY_INITIAL_DELAY": "0.2",
            "WORKER_SHUTDOWN_TIMEOUT": "3",
            "TASK_FILES_DIR": str(self.root / f"task-files-{kind}"),
            "MARKER_DIR": str(self.markers),
            "STEP_SECONDS": "0.1",
            "ANALYZE_SECONDS": "0.05",
            "UNRELIABLE_FAIL_RATE": "0",
        }
        env.update({k: str(v) for k, v in overrides.items()})
        return env

    def start_worker(self, kind: str, **env: str) -> Process:
        p = Process(
            f"worker {kind}",
            [sys.executable, str(WORKER_SCRIPT), kind],
            self.worker_env(kind, **env),
            self.root / f"worker-{kind}.log",
            self.root,
        )
        p.start()
        self.workers[kind] = p
        return p

    def start_workers(self, *kinds: str, **env: str) -> None:
        """Starts workers and waits until the orchestrator lists them idle."""
        for kind in kinds:
            self.start_worker(kind, **env)
        self.wait_workers_idle(*kinds)

    def wait_workers_idle(self, *kinds: str, timeout: float = 30.0) -> None:
        want = {WORKER_IDS[k] for k in kinds}

        def ready():
            for kind in kinds:
                if not self.workers[kind].alive():
                    raise AssertionError(f"worker {kind} exited:\n{self.workers[kind].output()[-3000:]}")
            idle = {w["worker_id"] for w in self.client.workers() if w.get("status") == "idle"}
            return want <= idle

        wait_until(f"workers {sorted(want)} to be idle", ready, timeout=timeout)

    def protocol_errors(self, kind: str) -> list[str]:
        """The HTTP errors the orchestrator answered a worker's SDK with."""
        return [m.group(0) for m in PROTOCOL_ERROR.finditer(self.workers[kind].output())]

    def assert_no_protocol_errors(self, *kinds: str) -> None:
        for kind in kinds or tuple(self.workers):
            errors = self.protocol_errors(kind)
            assert not errors, f"worker {kind} got HTTP errors from the orchestrator: {errors[:5]}"

    def stop(self) -> None:
        for p in self.workers.values():
            p.stop()
        self.orchestrator.stop()

    def logs(self) -> str:
        out = []
        for p in [self.orchestrator, *self.workers.values()]:
            text = p.output()
            out.append(f"----- {p.name} ({p.log_path}) -----\n{text[-6000:]}")
        return "\n".join(out)


def dispatches_of(job: dict, task_type: str) -> list[dict]:
    return [d for d in job.get("dispatches") or [] if d.get("type") == task_type]
