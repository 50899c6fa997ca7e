"""Neo4j access: one driver, read/write helpers, driver errors translated once.

Every statement runs with a server-side transaction timeout, so a runaway
query is stopped by Neo4j itself rather than by a client that gave up.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, LiteralString

import neo4j
from neo4j import exceptions as neo4j_errors

from wekadocs.errors import GraphStoreError
from wekadocs.neo4j_password import neo4j_password
from wekadocs.settings import Settings

__all__ = ["GraphStore"]


class GraphStore:
    """A thin, explicit wrapper around a ``neo4j.Driver``.

    Args:
        driver: a ready driver; the store closes it in ``close()``.
        database: the database every statement runs against.
        tx_timeout_s: server-side timeout applied to each transaction.
        write_timeout_s: the same for ``write_all``'s batches (default: ``tx_timeout_s``).
            Our own write batches (a few dozen pages of sections and entities
            each) are not the runaway queries the timeout guards against, and on
            a loaded machine one legitimately outlasts a read's budget.
    """

    def __init__(self, driver: neo4j.Driver, database: str, tx_timeout_s: float,
                 write_timeout_s: float | None = None) -> None:
        self._driver = driver
        self._database = database
        self._timeout = tx_timeout_s
        self._write_timeout = write_timeout_s or tx_timeout_s
        self.uri = ""

    @classmethod
    def connect(cls, settings: Settings, *, retry_s: float = 30.0) -> GraphStore:
        """Open a driver from settings and check that the server answers.

        ``retry_s`` bounds how long the driver retries a transaction on
        transient errors; probes pass 0 to fail fast and retry on their own.
        """
        auth = (settings.neo4j_user, neo4j_password(settings))
        with _translated(f"connecting to Neo4j at {settings.bolt_uri}"):
            driver = neo4j.GraphDatabase.driver(
                settings.bolt_uri,
                auth=auth,
                connection_timeout=5,
                max_connection_lifetime=3600,
                max_transaction_retry_time=retry_s,
                # Server notifications (e.g. "cartesian product" on the neighbour
                # template) arrive with every result and the driver logs each one:
                # in a Serve replica that was 7% of a search's CPU and megabytes of
                # log per minute. The validator reads EXPLAIN plans, not these.
                notifications_min_severity=neo4j.NotificationMinimumSeverity.OFF,
            )
        store = cls(driver, settings.neo4j_database, settings.neo4j_tx_timeout_s, settings.neo4j_write_timeout_s)
        store.uri = settings.bolt_uri
        try:
            store.read("RETURN 1 AS ok")
        except GraphStoreError:
            driver.close()
            raise
        return store

    def read(self, cypher: LiteralString, **params: Any) -> list[dict[str, Any]]:
        """Run a read-only statement (routed to readers in a cluster).

        READ routing opens the transaction in read access mode, and the server
        refuses any write in it, on a single server too (see
        test_the_server_refuses_writes_sent_through_read).
        """
        return self._run(cypher, params, neo4j.RoutingControl.READ)

    def explain(self, cypher: LiteralString, params: Mapping[str, Any]) -> dict[str, Any]:
        """The planner's plan for ``cypher`` (``EXPLAIN``: planned, never executed)."""
        query = neo4j.Query("EXPLAIN " + cypher, timeout=self._timeout)
        with _translated(f"explaining {_first_line(cypher)!r}"):
            _, summary, _ = self._driver.execute_query(
                query, dict(params), routing_=neo4j.RoutingControl.READ, database_=self._database
            )
        if summary.plan is None:
            raise GraphStoreError(f"explaining {_first_line(cypher)!r}: the server returned no plan")
        return dict(summary.plan)

    def write(self, cypher: LiteralString, **params: Any) -> list[dict[str, Any]]:
        """Run a statement that may write, in its own transaction."""
        return self._run(cypher, params, neo4j.RoutingControl.WRITE)

    def write_all(self, statements: list[tuple[LiteralString, dict[str, Any]]]) -> list[list[dict[str, Any]]]:
        """Run statements in one transaction: all of them take effect, or none."""

        def work(tx: neo4j.ManagedTransaction) -> list[list[dict[str, Any]]]:
            return [[as_dict(record) for record in tx.run(cypher, params)] for cypher, params in statements]

        first = statements[0][0] if statements else ""
        with _translated(f"writing a batch starting {_first_line(first)!r}"):
            with self._driver.session(database=self._database) as session:
                return session.execute_write(_with_timeout(work, self._write_timeout))

    def run_in_system(self, cypher: LiteralString, **params: Any) -> list[dict[str, Any]]:
        """Run an administration statement against the ``system`` database."""
        query = neo4j.Query(cypher, timeout=self._timeout)
        with _translated(f"running {_first_line(cypher)!r} on system"):
            records, _, _ = self._driver.execute_query(query, params, database_="system")
        return [as_dict(record) for record in records]

    def server_info(self) -> dict[str, str]:
        """Name, version and edition of the connected server."""
        rows = self.read(
            "CALL dbms.components() YIELD name, versions, edition "
            "RETURN name, versions[0] AS version, edition"
        )
        return {k: str(v) for k, v in rows[0].items()} if rows else {}

    def close(self) -> None:
        self._driver.close()

    def __enter__(self) -> GraphStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(
        self, cypher: LiteralString, params: dict[str, Any], routing: neo4j.RoutingControl
    ) -> list[dict[str, Any]]:
        query = neo4j.Query(cypher, timeout=self._timeout)
        with _translated(f"running {_first_line(cypher)!r}"):
            records, _, _ = self._driver.execute_query(
                query, params, routing_=routing, database_=self._database
            )
        return [as_dict(record) for record in records]


_SCALARS = frozenset({str, int, float, bool, type(None)})


def as_dict(record: neo4j.Record) -> dict[str, Any]:
    """``record.data()``, without its walk where nothing needs converting.

    ``data()`` visits every value with abstract-class checks, to turn graph
    objects into dicts. A search reads about 230 rows of scalars and lists of
    scalars, which the driver hands over plain already, and that walk cost
    3.3 of the 7.5 ms of client CPU of the 117-row ``section_details`` read.
    A record holding anything else (a node, a map) still goes through
    ``data()``.
    """
    values = record.values()
    for value in values:
        if type(value) not in _SCALARS and not (
                type(value) is list and all(type(item) in _SCALARS for item in value)):
            return record.data()
    return dict(zip(record.keys(), values))


@contextmanager
def _translated(action: str) -> Iterator[None]:
    """The one place Neo4j driver errors become ``GraphStoreError``."""
    try:
        yield
    except neo4j_errors.AuthError as exc:
        raise GraphStoreError(f"{action}: authentication failed ({exc.message})") from exc
    except neo4j_errors.ServiceUnavailable as exc:
        raise GraphStoreError(f"{action}: Neo4j is unreachable ({exc})") from exc
    except neo4j_errors.Neo4jError as exc:
        raise GraphStoreError(f"{action}: {exc.code}: {exc.message}") from exc
    except neo4j_errors.DriverError as exc:
        raise GraphStoreError(f"{action}: {exc}") from exc
    except ValueError as exc:  # malformed URI and the like
        raise GraphStoreError(f"{action}: {exc}") from exc


def _with_timeout(work: Any, timeout: float) -> Any:
    return neo4j.unit_of_work(timeout=timeout)(work)


def _first_line(cypher: str) -> str:
    line = cypher.strip().splitlines()[0] if cypher.strip() else ""
    return line[:80]
