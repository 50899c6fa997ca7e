"""What a source says changed: one page, one change, at one revision.

Events cross process boundaries (webhooks → Redis → consumers), so they are
pydantic models with a JSON form, validated on the way in and on the way out.
"""

from __future__ import annotations

import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from wekadocs.ids import bounded

__all__ = ["ChangeEvent", "ChangeType", "Priority", "delivery_id", "MAX_DELIVERY_ID", "MAX_PAGE_PATH"]

ChangeType = Literal["added", "modified", "removed", "renamed"]
Priority = Literal["normal", "high"]
MAX_DELIVERY_ID = 200
MAX_PAGE_PATH = 1000  # the longest page path an event carries; what feeds the queue bounds its paths by it


def delivery_id(*parts: str) -> str:
    """An event's delivery id from its parts (origin, source, revision, page).
    Page paths run to 1,000 characters and the WEKA docs have one of 147, so a
    long id keeps its start plus a digest of the whole, within bounds."""
    return bounded(":".join(parts), MAX_DELIVERY_ID)


class ChangeEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str = Field(min_length=1, max_length=200, description="configured source name")
    path: str = Field(min_length=1, max_length=MAX_PAGE_PATH, description="page path relative to the source's docs root")
    change: ChangeType
    revision: str = Field(default="", max_length=200, description="commit SHA, page version or cursor")
    priority: Priority = "normal"
    delivery_id: str = Field(min_length=1, max_length=MAX_DELIVERY_ID,
                             description="unique per delivery; repeats are dropped")
    old_path: str | None = Field(default=None, max_length=MAX_PAGE_PATH, description="where a renamed page was")
    created_at: float = Field(default_factory=time.time)

    @model_validator(mode="after")
    def _renames_name_their_origin(self) -> ChangeEvent:
        if (self.change == "renamed") != (self.old_path is not None):
            raise ValueError("old_path is required for a rename, and only for a rename")
        return self
