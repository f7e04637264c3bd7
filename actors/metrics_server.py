"""``python -m actors.metrics_server``: /metrics for hosts with workers only.

It serves every process's metrics from ``PROMETHEUS_MULTIPROC_DIR`` plus the
queue gauges, read once per scrape, on ``HOOKLINE_METRICS_BIND`` (loopback
unless set) and ``HOOKLINE_METRICS_PORT``.
"""
from __future__ import annotations

import logging
import socket
from http.server import ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, MetricsHandler, multiprocess

from actors.queues import QueueCollector
from hookline import logs
from hookline.config import Config, ConfigError, listen_address
from hookline.metrics import FinishedCollector
from hookline.redis_client import connect

log = logging.getLogger("hookline.metrics")


def build_registry(config: Config) -> CollectorRegistry:
    registry = CollectorRegistry()
    if not config.prometheus_multiproc_dir:
        raise ConfigError("PROMETHEUS_MULTIPROC_DIR must be set for the metrics server")
    multiprocess.MultiProcessCollector(registry)
    client = connect(config.redis_url)
    registry.register(QueueCollector(client, heartbeat_timeout_ms=config.heartbeat_timeout_ms))
    registry.register(FinishedCollector(client))
    return registry


def main(config: Config | None = None) -> None:
    config = config or Config.from_env()
    logs.configure(config.log_format, config.log_level)
    handler: Any = MetricsHandler.factory(build_registry(config))
    server_class = type("MetricsHTTPServer", (ThreadingHTTPServer,), {
        "address_family": socket.AF_INET6 if ":" in config.metrics_bind else socket.AF_INET,
    })
    server = server_class((config.metrics_bind, config.metrics_port), handler)
    log.info("metrics server listening on %s", listen_address(config.metrics_bind, config.metrics_port))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
