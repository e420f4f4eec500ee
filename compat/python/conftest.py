from __future__ import annotations

import os
import shutil
import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest

from harness import Deployment, WebhookReceiver

REPO = Path(__file__).resolve().parents[2]


def pytest_report_header(config):
    return f"avtomatika-worker {version('avtomatika-worker')}, rxon {version('rxon')}"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    setattr(item, f"rep_{rep.when}", rep)
    return rep


@pytest.fixture(scope="session")
def orchestrator_binary(tmp_path_factory) -> str:
    """The showcase binary: AVTO_COMPAT_ORCHESTRATOR, or built from this tree."""
    if path := os.environ.get("AVTO_COMPAT_ORCHESTRATOR"):
        assert os.access(path, os.X_OK), f"AVTO_COMPAT_ORCHESTRATOR={path} is not an executable"
        return path
    go = shutil.which("go")
    assert go, "set AVTO_COMPAT_ORCHESTRATOR to a built showcase, or put go on PATH"
    out = tmp_path_factory.mktemp("bin") / "showcase"
    subprocess.run([go, "build", "-o", str(out), "./examples/showcase"], cwd=REPO, check=True)
    return str(out)


@pytest.fixture(scope="session")
def webhook():
    r = WebhookReceiver()
    yield r
    r.close()


@pytest.fixture
def deploy(request, orchestrator_binary, webhook, tmp_path):
    """Starts an orchestrator (deploy(orchestrator_env=...)) and stops it, and
    every worker started through it, after the test; their logs are printed
    when the test failed."""
    made: list[Deployment] = []

    def make(orchestrator_env: dict | None = None) -> Deployment:
        d = Deployment(orchestrator_binary, tmp_path / f"d{len(made)}", webhook.url, orchestrator_env)
        made.append(d)
        d.start_orchestrator()
        return d

    yield make
    for d in made:
        d.stop()
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        for d in made:
            print(d.logs())
