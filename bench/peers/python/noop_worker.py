"""The peer benchmark's worker, written with the upstream Python SDK
(avtomatika-worker): one skill, "noop", that returns at once, so that what
is measured is the orchestration. The same script serves our orchestrator
and upstream's; the SDK reads its configuration from the environment
(ORCHESTRATOR_URL, WORKER_ID, WORKER_TOKEN, MAX_CONCURRENT_TASKS, ...).
"""

from avtomatika_worker import Worker

worker = Worker(worker_type="bench-worker")


@worker.skill("noop")
async def noop(params: dict, task_id: str):
    return {"data": {}}


if __name__ == "__main__":
    worker.run()
