"""The Redis part: every key under our prefix (``wekadocs:``), key by key, with
``DUMP`` and its remaining TTL, put back with ``RESTORE … REPLACE``.

That is the queue's streams with their consumer group and pending entries,
the dead letters, the source registry, cursors and statuses, the API tokens
(hashes only), the audit stream and the delivery-id dedupe keys (with their
remaining TTLs; keys about to expire, such as rate-limit buckets, are left
out). Key-level rather than the server's RDB file: it
works the same on our own Redis and on an external one (``REDIS_URL``),
takes only our keys from a shared server, and restores without stopping
Redis.

Each key is read in one ``MULTI``/``EXEC`` (its dump, TTL and content
together), so every key is consistent in itself; keys are not frozen
together (a webhook may enqueue while the backup reads). ``DUMP`` payloads
carry Redis's RDB version: they restore into the same or a newer Redis.

File: ``redis/keys.jsonl``, one line per key: ``{"key", "type", "ttl_ms",
"dump"}`` (key and dump base64). Content checksum: SHA-256 over each key's
name, type and content (read with the type's own commands, so it does not
depend on the encoding ``DUMP`` chose); TTLs are not in it (they tick).
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import redis

from cluster.backup.manifest import PartSummary, canonical, digest_lines, file_entry
from wekadocs.errors import BackupError
from wekadocs.settings import Settings

__all__ = ["PART", "PREFIX", "client_for", "export", "load", "summary", "populated_keys"]

PART = "redis"
PREFIX = "wekadocs:"
QUEUE_STREAMS = ("wekadocs:changes:high", "wekadocs:changes:normal")
DEAD_LETTERS = "wekadocs:changes:dead"
SOURCES = "wekadocs:sources"
TOKENS = "wekadocs:auth:tokens"
# Keys this close to expiring (rate-limit buckets live seconds) are not worth
# keeping; the restored stack's check skips keys under half that, so a key
# kept with its remaining TTL cannot expire between the load and the check.
SKIP_TTL_MS = 600_000
CHECK_SKIP_TTL_MS = SKIP_TTL_MS // 2


def client_for(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(settings.effective_redis_url, socket_timeout=30, socket_connect_timeout=5)


def export(client: redis.Redis, backup: Path) -> PartSummary:
    folder = backup / PART
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "keys.jsonl"
    reads = []
    with path.open("w", encoding="utf-8") as out:
        for key in _our_keys(client):
            read = _read_key(client, key, with_dump=True)
            if read is None or 0 < read[1] < SKIP_TTL_MS:
                continue  # expired or deleted meanwhile, or about to expire
            kind, ttl_ms, payload, content = read
            out.write(json.dumps({"key": _b64(key), "type": kind, "ttl_ms": ttl_ms, "dump": _b64(payload)}) + "\n")
            reads.append((key, kind, content))
    part = _summarise(reads)
    part.files[f"{PART}/keys.jsonl"] = file_entry(path)
    return part


def summary(client: redis.Redis, *, skip_ttl_ms: int = CHECK_SKIP_TTL_MS) -> PartSummary:
    """The same counts and checksums, read from a live Redis (keys about to expire left out)."""
    reads = []
    for key in _our_keys(client):
        read = _read_key(client, key, with_dump=False)
        if read is not None and not 0 < read[1] < skip_ttl_ms:
            kind, _, _, content = read
            reads.append((key, kind, content))
    return _summarise(reads)


def populated_keys(client: redis.Redis) -> list[str]:
    """Our keys that hold something: every key but an empty stream (a consumer
    group made at start-up on a fresh stack holds nothing)."""
    found = []
    for key in _our_keys(client):
        if client.type(key) == b"stream" and client.xlen(key) == 0:
            continue
        found.append(key.decode(errors="replace"))
    return found


def load(client: redis.Redis, backup: Path) -> int:
    """Replace every key under our prefix by the backup's; the keys restored."""
    rows = [json.loads(line) for line in (backup / PART / "keys.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()]
    stale = [key for key in _our_keys(client)]
    pipe = client.pipeline(transaction=False)
    for start in range(0, len(stale), 500):
        pipe.delete(*stale[start:start + 500])
    for row in rows:
        pipe.restore(base64.b64decode(row["key"]), max(int(row["ttl_ms"]), 0), base64.b64decode(row["dump"]),
                     replace=True)
    try:
        pipe.execute()
    except redis.ResponseError as exc:
        version = client.info("server").get("redis_version")
        raise BackupError(f"Redis refused a key of the backup ({exc}); a DUMP payload restores only into the "
                          f"Redis release that wrote it or a newer one (this one is {version})") from exc
    return len(rows)


# --- internals -------------------------------------------------------------------


def _our_keys(client: redis.Redis) -> list[bytes]:
    return sorted(client.scan_iter(match=f"{PREFIX}*", count=1000))


def _read_key(client: redis.Redis, key: bytes, *, with_dump: bool) -> tuple[str, int, bytes, Any] | None:
    """(type, ttl ms or 0, DUMP payload, content) read in one transaction; None when the key is gone."""
    for _ in range(5):
        kind = client.type(key).decode()
        if kind == "none":
            return None
        groups = [g["name"] for g in client.xinfo_groups(key)] if kind == "stream" else []
        pipe = client.pipeline(transaction=True)
        pipe.type(key)
        pipe.pttl(key)
        if with_dump:
            pipe.dump(key)
        _queue_content(pipe, key, kind, groups)
        try:
            replies = pipe.execute()
        except redis.ResponseError:
            continue  # the key changed type within the transaction: read again
        found, ttl = replies[0].decode(), int(replies[1])
        if found != kind:
            continue  # replaced by a key of another type meanwhile: read again
        payload = replies[2] if with_dump else b""
        content = replies[3 if with_dump else 2:]
        if with_dump and payload is None:
            return None
        return kind, ttl if ttl > 0 else 0, payload, _normalised(kind, content, groups)
    raise BackupError(f"Redis key {key!r} kept changing type while it was read")


def _queue_content(pipe: Any, key: bytes, kind: str, groups: list[bytes]) -> None:
    if kind == "string":
        pipe.get(key)
    elif kind == "hash":
        pipe.hgetall(key)
    elif kind == "list":
        pipe.lrange(key, 0, -1)
    elif kind == "set":
        pipe.smembers(key)
    elif kind == "zset":
        pipe.zrange(key, 0, -1, withscores=True)
    elif kind == "stream":
        pipe.xrange(key)
        pipe.xinfo_groups(key)
        for group in groups:
            pipe.xpending_range(key, group, min="-", max="+", count=1_000_000)
    else:
        raise BackupError(f"Redis key {key!r} has type {kind}, which the backup does not know how to check")


def _normalised(kind: str, content: list[Any], groups: list[bytes]) -> Any:
    """The content as plain, order-free data (for the checksum)."""
    if kind == "hash":
        return sorted((_text(k), _text(v)) for k, v in content[0].items())
    if kind == "set":
        return sorted(_text(m) for m in content[0])
    if kind == "zset":
        return [(_text(m), s) for m, s in content[0]]
    if kind == "list":
        return [_text(v) for v in content[0]]
    if kind == "stream":
        entries = [(_text(i), sorted((_text(k), _text(v)) for k, v in fields.items())) for i, fields in content[0]]
        infos = sorted((_text(g["name"]), _text(g["last-delivered-id"]), int(g["pending"])) for g in content[1])
        pending = [sorted((_text(p["message_id"]), _text(p["consumer"]), int(p["times_delivered"])) for p in rows)
                   for rows in content[2:]]
        return [entries, infos, pending]
    return _text(content[0])


def _summarise(reads: list[tuple[bytes, str, Any]]) -> PartSummary:
    """Counts from the same reads the checksum covers, so they agree with it."""
    content = {_text(key): value for key, _, value in reads}

    def entries(key: str) -> int:
        return len(content[key][0]) if key in content else 0

    return PartSummary(
        counts={"keys": len(reads), "queue_entries": sum(entries(s) for s in QUEUE_STREAMS),
                "dead_letters": entries(DEAD_LETTERS), "sources": len(content.get(SOURCES, [])),
                "cursors": sum(1 for key in content if key.startswith(f"{PREFIX}source:") and key.endswith(":cursor")),
                "api_tokens": len(content.get(TOKENS, []))},
        checksums={"keys": digest_lines(_key_line(key, kind, value) for key, kind, value in reads)},
    )


def _key_line(key: bytes, kind: str, content: Any) -> str:
    return f"{_text(key)}\0{kind}\0{hashlib.sha256(canonical(content).encode()).hexdigest()}"


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    return str(value)


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()
