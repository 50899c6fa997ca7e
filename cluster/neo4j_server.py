"""Our own Neo4j Community server: jars from Maven Central, a generated config.

No Docker and no embedded stand-in: the real server class
(``org.neo4j.server.CommunityEntryPoint``) runs from the ``org.neo4j:neo4j``
artifact and its dependencies, which ``mvn dependency:copy-dependencies`` puts
in a cache folder shared by every data folder.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from wekadocs.errors import MissingToolError, ServiceStartError
from wekadocs.graph_store import GraphStore
from wekadocs.neo4j_password import neo4j_password
from wekadocs.settings import Settings

__all__ = ["Neo4jServer"]

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>wekadocs.local</groupId>
  <artifactId>neo4j-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.neo4j</groupId>
      <artifactId>neo4j</artifactId>
      <version>{version}</version>
    </dependency>
  </dependencies>
</project>
"""

# JVM flags Neo4j's own launcher passes; the server runs without them but
# Netty and the page cache are slower.
_JVM_FLAGS = [
    "-XX:+UseG1GC",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:+UnlockExperimentalVMOptions",
    "-XX:+TrustFinalNonStaticFields",
    "-XX:+DisableExplicitGC",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djdk.nio.maxCachedBufferSize=1024",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dfile.encoding=UTF-8",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--enable-native-access=ALL-UNNAMED",
]

_ENTRY_POINT = "org.neo4j.server.CommunityEntryPoint"
_ADMIN_TOOL = "org.neo4j.cli.AdminTool"


class Neo4jServer:
    """Lays out, starts and probes one Neo4j server under ``data_dir/neo4j``."""

    name = "neo4j"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.home = settings.data_dir / "neo4j"
        self.lib_dir = settings.cache_dir / f"neo4j-{settings.neo4j_version}" / "lib"
        self.log_file = self.home / "logs" / "console.log"

    @property
    def managed(self) -> bool:
        return self.settings.manages_neo4j

    @property
    def address(self) -> str:
        return self.settings.bolt_uri

    def ports(self) -> dict[str, int]:
        """Setting name -> port this server listens on."""
        return {"neo4j_port": self.settings.neo4j_port}

    @property
    def marker(self) -> str:
        """Appears in our server's command line, and in no other process's."""
        return f"--home-dir={self.home}"

    # --- preparing --------------------------------------------------------

    def prepare(self) -> None:
        """Fetch jars if needed, write the config, set the first password."""
        java = _require_java()
        self.fetch_jars()
        for folder in ("conf", "data", "logs", "run", "plugins", "import"):
            (self.home / folder).mkdir(parents=True, exist_ok=True)
        (self.home / "conf" / "neo4j.conf").write_text(self._config(), encoding="utf-8")
        if not (self.home / "data" / "dbms" / "auth.ini").exists() and not (
            self.home / "data" / "databases"
        ).exists():
            self._set_initial_password(java)

    def fetch_jars(self) -> Path:
        """Copy ``org.neo4j:neo4j`` and its dependencies into the cache (once)."""
        done = self.lib_dir.parent / ".complete"
        if done.exists():
            return self.lib_dir
        mvn = shutil.which("mvn")
        if mvn is None:
            raise MissingToolError(
                "mvn",
                "Maven fetches the Neo4j jars from Maven Central; "
                "install it (Debian: apt-get install maven) or run .ci/run",
            )
        workdir = self.lib_dir.parent
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "pom.xml").write_text(
            _POM.format(version=self.settings.neo4j_version), encoding="utf-8"
        )
        shutil.rmtree(self.lib_dir, ignore_errors=True)
        result = subprocess.run(
            [mvn, "-B", "-q", "dependency:copy-dependencies", f"-DoutputDirectory={self.lib_dir}"],
            cwd=workdir,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0 or not any(self.lib_dir.glob("neo4j-*.jar")):
            tail = (result.stdout + result.stderr).strip().splitlines()[-15:]
            raise ServiceStartError(
                self.name,
                f"Maven could not fetch org.neo4j:neo4j:{self.settings.neo4j_version}:\n"
                + "\n".join(tail),
            )
        done.write_text(self.settings.neo4j_version)
        return self.lib_dir

    def _config(self) -> str:
        s = self.settings
        lines = {
            "server.default_listen_address": "127.0.0.1",
            "server.default_advertised_address": "127.0.0.1",
            "server.bolt.enabled": "true",
            "server.bolt.listen_address": f"127.0.0.1:{s.neo4j_port}",
            # Bolt is all we use; HTTP would be one more open port to secure.
            "server.http.enabled": "false",
            "server.https.enabled": "false",
            "dbms.security.auth_enabled": "true",
            "server.memory.heap.initial_size": s.neo4j_heap,
            "server.memory.heap.max_size": s.neo4j_heap,
            "server.memory.pagecache.size": s.neo4j_pagecache,
            "db.transaction.timeout": f"{int(s.neo4j_tx_timeout_s)}s",
            "db.logs.query.enabled": "OFF",
            "server.directories.data": str(self.home / "data"),
            "server.directories.logs": str(self.home / "logs"),
            "server.directories.run": str(self.home / "run"),
            "server.directories.plugins": str(self.home / "plugins"),
            "server.directories.import": str(self.home / "import"),
        }
        body = "\n".join(f"{key}={value}" for key, value in lines.items())
        return "# Written by `wekadocs services up`; edits are overwritten.\n" + body + "\n"

    def _set_initial_password(self, java: str) -> None:
        """``neo4j-admin dbms set-initial-password`` takes the password only as
        an argument, and a command line is readable by every local user
        (``/proc/<pid>/cmdline``, ``ps``). The admin tool's picocli parser
        expands an ``@file`` argument into the arguments the file holds, so
        the command line names a 0600 file in a 0700 folder instead, which
        is removed as soon as the tool exits."""
        password = neo4j_password(self.settings)
        if any(ch in password for ch in "\r\n\0"):
            raise ServiceStartError(self.name, "NEO4J_PASSWORD must not contain line breaks or NUL")
        folder = Path(tempfile.mkdtemp(dir=self.home / "run", prefix=".initial-password-"))  # 0700
        argfile = folder / "args"
        try:
            descriptor = os.open(argfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as out:
                # "--" ends the options: a password that begins with "-" is still the password
                out.write('"--"\n' + _quoted(password) + "\n")
            result = subprocess.run(
                [java, "-Dfile.encoding=UTF-8", "-cp", f"{self.lib_dir}/*", _ADMIN_TOOL,
                 "dbms", "set-initial-password", f"@{argfile}"],
                env={**os.environ, **self.env()},
                cwd=self.home,
                capture_output=True,
                text=True,
            )
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        if result.returncode != 0:
            raise ServiceStartError(
                self.name,
                "could not set the initial password (NEO4J_PASSWORD): "
                + (result.stderr or result.stdout).strip()[-500:],
            )

    # --- running ------------------------------------------------------------

    def command(self) -> list[str]:
        heap = self.settings.neo4j_heap
        return [
            _require_java(),
            f"-Xms{heap}",
            f"-Xmx{heap}",
            *_JVM_FLAGS,
            "-cp",
            f"{self.lib_dir}/*",
            _ENTRY_POINT,
            self.marker,
            f"--config-dir={self.home / 'conf'}",
        ]

    def admin_command(self, *args: str) -> list[str]:
        """``neo4j-admin ARGS`` of this release, for our home and config (run it
        with ``env()`` and ``cwd=home``): ``database dump``, ``database load``."""
        return [_require_java(), "-Dfile.encoding=UTF-8", "-cp", f"{self.lib_dir}/*", _ADMIN_TOOL, *args]

    def env(self) -> dict[str, str]:
        return {"NEO4J_HOME": str(self.home), "NEO4J_CONF": str(self.home / "conf")}

    def probe(self) -> str:
        """The server's version; raises ``GraphStoreError`` until it answers."""
        with GraphStore.connect(self.settings, retry_s=0) as graph:
            info = graph.server_info()
        return f"{info.get('version', '?')} {info.get('edition', '')}".strip()


def _quoted(argument: str) -> str:
    """One argument of a picocli @-file: double-quoted, so spaces, quotes, ``#``
    and a leading ``@`` stay literal; backslash and ``"`` escaped."""
    return '"' + argument.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _require_java() -> str:
    java = shutil.which("java")
    if java is None:
        raise MissingToolError(
            "java",
            "Neo4j 5.26 needs Java 17 or 21 (Debian: apt-get install openjdk-17-jre-headless)",
        )
    result = subprocess.run([java, "-version"], capture_output=True, text=True)
    found = re.search(r'version "(\d+)', result.stderr + result.stdout)
    if found is None or int(found.group(1)) < 17:
        raise MissingToolError(
            "java 17+",
            f"found {(result.stderr or result.stdout).strip().splitlines()[0]!r}; "
            "Neo4j 5.26 needs Java 17 or 21",
        )
    return java
