"""Our own Prometheus (Debian's ``prometheus``) on 127.0.0.1, started by
``services up --monitoring``.

It scrapes every Ray node's metrics agent through the service discovery file
the head's dashboard keeps up to date (``prom_metrics_service_discovery.json``
in the head's session dir, listing each live node's metrics export address and
the dashboard's own): worker nodes joining or leaving are followed without a
restart. Our metrics (``ray_wekadocs_*``) are exported by those same agents —
the MCP service's ``/metrics`` only passes its node's agent through — so there
is no other endpoint to scrape. The alert rules are read from
``cluster/monitoring/rules/*.yml`` in place, so ``promtool`` checks exactly what
runs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx

from wekadocs.errors import MissingToolError, ServiceStartError
from wekadocs.settings import Settings

__all__ = ["PrometheusServer", "RULES_DIR", "DISCOVERY_FILE"]

RULES_DIR = Path(__file__).resolve().parent / "monitoring" / "rules"
DISCOVERY_FILE = "prom_metrics_service_discovery.json"  # ray._private.ray_constants.PROMETHEUS_SERVICE_DISCOVERY_FILE


class PrometheusServer:
    """Lays out, starts and probes one Prometheus under ``data_dir/prometheus``."""

    name = "prometheus"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.data_dir / "prometheus"
        self.log_file = settings.data_dir / "logs" / "prometheus.log"
        self.config_file = self.home / "prometheus.yml"

    @property
    def managed(self) -> bool:
        return True  # `services up` refuses --monitoring for a cluster that is not ours

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self.settings.prometheus_port}"

    @property
    def marker(self) -> str:
        return f"--config.file={self.config_file}"

    @property
    def discovery_file(self) -> Path:
        """Ray writes it in the head's current session; ``session_latest``
        follows a restarted head to its new session."""
        return self.settings.data_dir / "ray" / "session_latest" / DISCOVERY_FILE

    def ports(self) -> dict[str, int]:
        return {"prometheus_port": self.settings.prometheus_port}

    def prepare(self) -> None:
        _require_prometheus()
        (self.home / "data").mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(self.config(), encoding="utf-8")

    def config(self) -> str:
        every = f"{self.settings.prometheus_scrape_s:g}s"
        return "\n".join([
            "# Written by `wekadocs services up --monitoring`; edits are overwritten.",
            "global:",
            f"  scrape_interval: {every}",
            f"  evaluation_interval: {every}",
            "rule_files:",
            f"  - '{RULES_DIR}/*.yml'",
            "scrape_configs:",
            "  # Every Ray node's metrics agent (and the dashboard's), as the head lists them.",
            "  - job_name: ray",
            "    file_sd_configs:",
            "      - files:",
            f"          - '{self.discovery_file}'",
            # The file is replaced in place each few seconds; a head restart
            # moves it to a new session folder, which only a re-read finds.
            f"        refresh_interval: {every}",
            "",
        ])

    def command(self) -> list[str]:
        return [
            _require_prometheus(),
            self.marker,
            f"--storage.tsdb.path={self.home / 'data'}",
            "--storage.tsdb.retention.time=15d",
            f"--web.listen-address=127.0.0.1:{self.settings.prometheus_port}",
        ]

    def env(self) -> dict[str, str]:
        return {}

    def probe(self) -> str:
        """Its version, once it is ready to answer queries."""
        ready = httpx.get(f"{self.address}/-/ready", timeout=3)
        if ready.status_code != 200:
            raise ServiceStartError(self.name, f"not ready yet ({ready.status_code})")
        info = httpx.get(f"{self.address}/api/v1/status/buildinfo", timeout=3)
        info.raise_for_status()
        return str(info.json()["data"]["version"])


def _require_prometheus() -> str:
    path = shutil.which("prometheus")
    if path is None:
        raise MissingToolError("prometheus", "install Debian's package (apt-get install prometheus) "
                               "or run ./dev setup")
    return path
