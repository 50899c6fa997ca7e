"""What we act on in a push webhook's body, validated before we act on it.

A forge's push payload is large and mostly ignored; these models keep only
the fields that become change events (the branch, the revision, the paths of
each commit) and bound every one of them, so a malformed or hostile body is a
400 with a reason rather than an error deep in the queue. Page paths are
repository paths as git records them: relative, ``/``-separated, with no
``.``/``..`` segments and no control characters. Anything else cannot come
from git and is refused, so it never reaches the queue.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from wekadocs.change_event import MAX_PAGE_PATH

__all__ = ["GitPush", "PayloadError", "parse_json", "MAX_PATH", "MAX_COMMITS", "MAX_FILES"]

# Git hosts allow longer paths, docs pages are far shorter; a longer one would
# pass here and then fail as a change event (a 500; found by fuzzing, see
# tests/connectors/test_push_payload_properties.py), so the event's bound is the bound.
MAX_PATH = MAX_PAGE_PATH
MAX_COMMITS = 2048  # GitHub lists at most 2048 commits in a push payload
MAX_FILES = 3000  # and at most 3000 files per commit
MAX_REF = 255
REVISION = r"^[0-9a-fA-F]{0,64}$"  # up to a SHA-256 object id


class PayloadError(ValueError):
    """The body is not a push we can act on; the message says why (for a 400)."""


def _repository_path(path: str) -> str:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        raise ValueError("control characters are not allowed in a path")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate from a \ud800 escape
        raise ValueError("a path must be valid UTF-8") from exc
    if path.startswith("/") or "\\" in path:
        raise ValueError("a path must be relative to the repository, with '/' separators")
    if any(part in ("", ".", "..") for part in path.split("/")):
        raise ValueError("a path may not have empty, '.' or '..' segments")
    return path


RepositoryPath = Annotated[str, StringConstraints(min_length=1, max_length=MAX_PATH),
                           AfterValidator(_repository_path)]
Paths = Annotated[list[RepositoryPath], Field(default_factory=list, max_length=MAX_FILES)]


class PushCommit(BaseModel):
    model_config = ConfigDict(extra="ignore")

    added: Paths
    modified: Paths
    removed: Paths


class GitPush(BaseModel):
    """A GitHub or GitLab push: ``ref`` names the branch; the revision is
    GitHub's ``after`` or GitLab's ``checkout_sha``."""

    model_config = ConfigDict(extra="ignore")

    ref: str = Field(min_length=1, max_length=MAX_REF)
    # object ids are hex: nothing else may reach a git command as a revision
    after: str = Field(default="", pattern=REVISION)
    checkout_sha: str | None = Field(default=None, pattern=REVISION)
    commits: list[PushCommit] = Field(default_factory=list, max_length=MAX_COMMITS)

    @property
    def revision(self) -> str:
        return self.after or self.checkout_sha or ""

    def is_branch(self, branch: str) -> bool:
        return self.ref == f"refs/heads/{branch}"

    @classmethod
    def parse(cls, payload: dict[str, Any]) -> GitPush:
        try:
            return cls.model_validate(payload)
        except ValidationError as exc:
            raise PayloadError(_reason(exc)) from None


def parse_json(body: bytes) -> dict[str, Any]:
    """The body as a JSON object. NaN and Infinity are refused (not JSON),
    as are nesting too deep to parse and integers too long to convert."""
    try:
        payload = json.loads(body, parse_constant=_refuse_constant)
    except RecursionError:
        raise PayloadError("body is nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:  # JSONDecodeError, an over-long integer
        raise PayloadError(f"body is not JSON: {str(exc)[:200]}") from None
    if not isinstance(payload, dict):
        raise PayloadError("body must be a JSON object")
    return payload


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _reason(exc: ValidationError) -> str:
    """The first few problems, short: a list of 3,000 wrong paths must not
    answer with 3,000 messages."""
    problems = exc.errors(include_url=False, include_input=False, include_context=False)
    shown = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in problems[:3])
    more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
    return f"not a push payload: {shown}{more}"
