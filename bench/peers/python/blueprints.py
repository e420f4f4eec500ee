"""The peer benchmark's two workloads as upstream blueprints, the
equivalents of bench/harness/workloads.go:

- one-task:  start -> one "noop" task on a worker -> finished
- fanout-10: start -> ten "noop" tasks in parallel -> join (aggregator) -> finished

Jobs are created at POST /api/v1/jobs/<workload>.
"""

from avtomatika import Blueprint


def one_task() -> Blueprint:
    bp = Blueprint("one-task", api_endpoint="/jobs/one-task", api_version="v1")

    @bp.handler("start", is_start=True)
    async def start(actions):
        actions.dispatch_task("noop", params={}, transitions={"success": "finished"})

    @bp.handler("finished", is_end=True)
    async def finished(actions):
        pass

    return bp


def fanout(width: int) -> Blueprint:
    name = f"fanout-{width}"
    bp = Blueprint(name, api_endpoint=f"/jobs/{name}", api_version="v1")

    @bp.handler("start", is_start=True)
    async def start(actions):
        actions.dispatch_parallel([{"type": "noop", "params": {}} for _ in range(width)], aggregate_into="join")

    @bp.aggregator("join")
    async def join(aggregation_results, actions):
        actions.go_to("finished")

    @bp.handler("finished", is_end=True)
    async def finished(actions):
        pass

    return bp


def all_blueprints() -> list[Blueprint]:
    return [one_task(), fanout(10)]
