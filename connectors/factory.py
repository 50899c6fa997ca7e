"""The connector for a configured source, by its kind."""

from __future__ import annotations

from pathlib import Path

from connectors.source_connector import SourceConnector
from wekadocs.secrets import SecretStore
from wekadocs.source_registry import SourceConfig

__all__ = ["open_connector"]


def open_connector(config: SourceConfig, *, mirrors: Path, secrets: SecretStore | None = None) -> SourceConnector:
    """``mirrors``: where git sources keep their bare mirrors (one folder per
    process that uses them). ``secrets``: where the tokens the source names
    are looked up now (else each connector reads its own environment)."""
    token = secrets.get(config.token_env) if secrets else None
    if config.kind == "git":
        from connectors.git_connector import GitConnector

        return GitConnector(config, mirrors)
    if config.kind == "github":
        from connectors.github_api import GitHubConnector

        return GitHubConnector(config, token=token)
    if config.kind == "notion":
        from connectors.notion_api import NotionConnector

        return NotionConnector(config, token=token)
    from connectors.confluence_api import ConfluenceConnector

    return ConfluenceConnector(config, token=token, user=secrets.get(config.user_env) if secrets else None)
