"""What every tool returns: an answer in Markdown, the sections behind it, a confidence.

One shape for all tools so an LLM client can always cite its sources: each
evidence item names the section id, the page path relative to the ingested
root, the heading and its anchor, the version, and the text that matched.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, model_validator

__all__ = ["Evidence", "Answer", "snippet"]

SNIPPET_CHARS = 280


class Evidence(BaseModel):
    section_id: str
    document_id: str
    path: str = Field(description="page path relative to the ingested root")
    heading: str = Field(description="the section's heading text")
    anchor: str = Field(description="GitBook anchor of the heading ('' for a page's intro)")
    version: str
    score: float = Field(description="ranking score; comparable within one answer only")
    snippet: str


class Answer(BaseModel):
    answer: str = Field(description="Markdown for the user")
    evidence: list[Evidence] = Field(default_factory=list)
    confidence: float = Field(ge=0.0, le=1.0)
    diagnostics: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _name_the_vectors(self) -> Answer:
        """Every answer says which collection and model its vector search used;
        null for both when it used none (graph-only tools, vectors down)."""
        self.diagnostics.setdefault("collection", None)
        self.diagnostics.setdefault("model", None)
        return self


def snippet(text: str, terms: list[str], width: int = SNIPPET_CHARS) -> str:
    """A window of the text around the first query term it contains."""
    flat = " ".join(text.split())
    lowered = flat.lower()
    hits = [pos for pos in (lowered.find(term) for term in terms if term) if pos >= 0]
    start = max(0, min(hits) - width // 4) if hits else 0
    window = flat[start:start + width]
    prefix = "…" if start > 0 else ""
    suffix = "…" if start + width < len(flat) else ""
    return prefix + window + suffix
