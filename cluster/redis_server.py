"""Our own ``redis-server`` (Debian's package) on 127.0.0.1, with AOF on.

The change queue lives in Redis, so durability matters more than the last
millisecond of throughput: append-only file, fsync every second.
"""

from __future__ import annotations

import shutil

import redis

from wekadocs.errors import MissingToolError
from wekadocs.settings import Settings

__all__ = ["RedisServer"]


class RedisServer:
    """Lays out, starts and probes one Redis server under ``data_dir/redis``."""

    name = "redis"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.data_dir / "redis"
        self.log_file = self.home / "redis.log"
        self.config_file = self.home / "redis.conf"

    @property
    def managed(self) -> bool:
        return self.settings.manages_redis

    @property
    def address(self) -> str:
        return self.settings.effective_redis_url

    def ports(self) -> dict[str, int]:
        return {"redis_port": self.settings.redis_port}

    @property
    def marker(self) -> str:
        return str(self.config_file)

    def prepare(self) -> None:
        _require_redis_server()
        self.home.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(self._config(), encoding="utf-8")

    def _config(self) -> str:
        lines = [
            "# Written by `wekadocs services up`; edits are overwritten.",
            "bind 127.0.0.1",
            f"port {self.settings.redis_port}",
            "protected-mode yes",
            "daemonize no",
            f"dir {self.home}",
            'logfile ""',
            # Keep the command line (with our config path) as the process title:
            # that is how `services down` recognises the process as ours.
            "set-proc-title no",
            "appendonly yes",
            "appendfsync everysec",
            "save 300 10",
            # The queue refuses work itself when full; Redis must never evict it.
            "maxmemory-policy noeviction",
        ]
        return "\n".join(lines) + "\n"

    def command(self) -> list[str]:
        return [_require_redis_server(), str(self.config_file)]

    def env(self) -> dict[str, str]:
        return {}

    def probe(self) -> str:
        """The server's version; raises until it answers PING."""
        client = redis.Redis.from_url(self.address, socket_timeout=2, socket_connect_timeout=2)
        try:
            client.ping()
            return str(client.info("server")["redis_version"])
        finally:
            client.close()


def _require_redis_server() -> str:
    path = shutil.which("redis-server")
    if path is None:
        raise MissingToolError(
            "redis-server", "install Debian's package (apt-get install redis-server) or run .ci/run"
        )
    return path
