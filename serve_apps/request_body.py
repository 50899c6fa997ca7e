"""Every request body arrives whole, soon, and small, before any handler runs.

Serve routes a request to a replica as soon as its headers are in, and the
body is then pulled through the proxy while the handler reads it, so a sender
that trickles its body (slow-loris) holds one of the replica's request slots
for as long as it likes. ``BoundedBody`` reads the body up front, under a
deadline and a size limit, and answers 408 or 413 itself: a slow sender
holds a slot for ``timeout_s`` at most, and the handlers below see a body
that is already complete. Both Serve apps wrap themselves in it.
"""

from __future__ import annotations

from typing import Any

import anyio
from starlette.responses import JSONResponse

__all__ = ["BoundedBody", "BODY_TIMEOUT_S"]

BODY_TIMEOUT_S = 10.0  # clients send a body at once; only a trickle takes longer
_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Message = dict[str, Any]


class BoundedBody:
    """Pure ASGI middleware: the body in ``timeout_s`` and ``max_bytes``, or a
    JSON ``{"error": …}`` with 408 or 413."""

    def __init__(self, app: Any, *, max_bytes: int, timeout_s: float = BODY_TIMEOUT_S) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in _WITH_BODY:
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, receive, send, 413, f"body over {self.max_bytes} bytes")
            return
        chunks: list[bytes] = []
        size = 0
        try:
            with anyio.fail_after(self.timeout_s):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return  # the client left: nothing to answer
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_bytes:  # a missing or lying Content-Length is caught here
                        await self._refuse(scope, receive, send, 413, f"body over {self.max_bytes} bytes")
                        return
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            await self._refuse(scope, receive, send, 408, f"the body did not arrive within {self.timeout_s:g} s")
            return
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    @staticmethod
    async def _refuse(scope: Any, receive: Any, send: Any, status: int, reason: str) -> None:
        # the client may still be sending: close the connection rather than read the rest
        await JSONResponse({"error": reason}, status_code=status, headers={"Connection": "close"})(scope, receive, send)


def _replay(body: bytes, receive: Any) -> Any:
    """A ``receive`` that hands the buffered body over once, then waits on the
    real one (for the disconnect a streaming handler listens for)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # type: ignore[no-any-return]

    return replayed
