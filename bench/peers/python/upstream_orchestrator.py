"""Starts upstream's orchestrator (avtomatika) for the peer benchmark, as
its documentation has a user do it: a Redis storage, the configuration from
the environment (REDIS_HOST, REDIS_PORT, REDIS_DB, API_HOST, API_PORT,
CLIENT_TOKEN, GLOBAL_WORKER_TOKEN, RATE_LIMITING_ENABLED, LOG_LEVEL, ...),
the benchmark's blueprints, and engine.run().

Two additions for the measurement. Logging is cut to warnings: upstream's
LogManager puts the root logger at DEBUG whatever LOG_LEVEL says, so every
request (aiohttp.access) and every Redis connection would be formatted as
JSON and written, work our orchestrator does not do in the harness (its
logs are discarded). And a job-finished subscriber (the engine's
on_job_finished hook, called once the final state is saved) sends
"<job id> <status> <unix time>" as a UDP datagram to BENCH_ENDS_ADDR
(host:port), where the load driver records when each job ended.
"""

import logging
import os
import socket
import time

from redis.asyncio import Redis

from avtomatika import OrchestratorEngine
from avtomatika.config import Config
from avtomatika.storage.redis import RedisStorage

from blueprints import all_blueprints


def main() -> None:
    config = Config()
    redis = Redis(host=config.REDIS_HOST, port=config.REDIS_PORT, db=config.REDIS_DB)
    engine = OrchestratorEngine(RedisStorage(redis), config)
    logging.getLogger().setLevel(logging.WARNING)
    for bp in all_blueprints():
        engine.register_blueprint(bp)

    host, port = os.environ["BENCH_ENDS_ADDR"].rsplit(":", 1)
    ends = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ends.connect((host, int(port)))

    async def job_finished(job_id: str, status: str, _state: dict) -> None:
        ends.send(f"{job_id} {status} {time.time():.6f}".encode())

    engine.on_job_finished.append(job_finished)
    engine.run()


if __name__ == "__main__":
    main()
