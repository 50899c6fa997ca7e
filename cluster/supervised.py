"""A thread that is restarted when its loop crashes, and says so.

The freshness actors run their loops (one poller per source, the registry
watch, the consumer) in threads. An exception a loop does not expect would
end its thread while the actor lives on, answering calls, so Ray never
restarts anything and the source silently stops being followed. Here any
exception is logged with its traceback, counted, and the loop starts again
after an exponential backoff; ``snapshot`` tells `wekadocs sources status`
whether the loop is running, restarting (waiting out its backoff) or dead
(its thread ended without being stopped).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Literal

__all__ = ["SupervisedThread", "LoopState"]

LoopState = Literal["running", "restarting", "dead", "stopped"]
log = logging.getLogger(__name__)


class SupervisedThread:
    """Runs ``loop`` (which returns once ``stopping`` is set) in a daemon thread.

    Args:
        stopping: set to stop the loop; the backoff waits on it too, so a stop
            is never held up by a restart.
        backoff_base_s, backoff_cap_s: the wait after the first crash in a row,
            doubled per further crash, capped. A run longer than the cap ends
            the streak.
    """

    def __init__(self, name: str, loop: Callable[[], None], stopping: threading.Event, *,
                 backoff_base_s: float = 1.0, backoff_cap_s: float = 30.0) -> None:
        self.name = name
        self.loop = loop
        self.stopping = stopping
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.restarts = 0
        self.last_crash = ""
        self.restarting = False
        self.thread = threading.Thread(target=self._supervise, name=name, daemon=True)
        self.thread.start()

    def _supervise(self) -> None:
        streak = 0
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                self.loop()
            except Exception as exc:  # noqa: BLE001 — whatever it was, the loop must come back
                log.exception("loop %s crashed; restarting it", self.name)
                self.last_crash = f"{type(exc).__name__}: {exc}"[:500]
                streak = 1 if time.monotonic() - started > self.backoff_cap_s else streak + 1
                self.restarting = True
                self.stopping.wait(min(self.backoff_cap_s, self.backoff_base_s * 2 ** (streak - 1)))
                self.restarting = False
                self.restarts += 1
                continue
            return  # the loop returned: stopped, or (not stopped) dead, which `state` reports

    @property
    def state(self) -> LoopState:
        if self.stopping.is_set():
            return "stopped"
        if not self.thread.is_alive():
            return "dead"
        return "restarting" if self.restarting else "running"

    def snapshot(self) -> dict[str, object]:
        return {"loop": self.state, "restarts": self.restarts, "last_crash": self.last_crash}
