"""What one chaos scenario measured, and the table ``perf/chaos.py`` prints."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Outcome", "format_table"]


@dataclass
class Outcome:
    """``sent``/``failed``: client requests (MCP calls or webhook deliveries),
    failed = still failing after the client's retries. ``lost``: events
    accepted (or vectors stored) that never came back; ``duplicated``: events
    queued twice for one delivery. ``recovery_s``: fault → the service whole
    again (None: it did not recover within the scenario's bound)."""

    scenario: str
    sent: int = 0
    failed: int = 0
    retried: int = 0
    lost: int = 0
    duplicated: int = 0
    recovery_s: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def format_table(outcomes: list[Outcome]) -> str:
    header = f"{'scenario':<50} {'sent':>5} {'failed':>6} {'retried':>7} {'lost':>5} {'dup':>4} {'recovery':>9}"
    rows = [header, "-" * len(header)]
    for o in outcomes:
        recovery = "never" if o.recovery_s is None else f"{o.recovery_s:.1f} s"
        rows.append(f"{o.scenario:<50} {o.sent:>5} {o.failed:>6} {o.retried:>7} {o.lost:>5} {o.duplicated:>4} "
                    f"{recovery:>9}")
        rows += [f"    {key}: {value}" for key, value in o.details.items()]
    return "\n".join(rows)
