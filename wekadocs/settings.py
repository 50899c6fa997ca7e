"""Effective settings: environment, then an optional YAML file, then defaults.

This is the only module that reads the environment. Everything else receives a
``Settings`` object. Leaving ``NEO4J_URI``, ``REDIS_URL``, ``QDRANT_URL`` and
``RAY_ADDRESS`` unset selects the embedded defaults: servers we start ourselves
on 127.0.0.1, Qdrant's engine in-process on disk, and a local Ray cluster.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import yaml
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from wekadocs.bundled_models import bundled
from wekadocs.errors import SettingsError

__all__ = ["Settings", "RateLimit", "load_settings", "SCHEMA_VERSION", "collection_name", "is_loopback"]

# The graph/vector schema this code writes. Bump it when node/edge shapes change:
# vector collections and cache keys are prefixed with it.
SCHEMA_VERSION = "1"

_ENV_PREFIX = "WEKADOCS_"


def collection_name(embedding_version: str) -> str:
    """The vector collection of one embedding version (of this schema)."""
    return f"sections-{SCHEMA_VERSION}-{embedding_version}"


_MEMORY_SIZE = re.compile(r"^[1-9][0-9]*[kmgKMG]$")


def is_loopback(host: str) -> bool:
    """True when ``host`` can only be reached from this machine (127.0.0.0/8,
    ::1, localhost); ``0.0.0.0`` and every other address or name are not."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class RateLimit(BaseModel):
    """One scope's token bucket: ``rate`` requests per second refill it, up to ``burst``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rate: float = Field(gt=0, description="requests per second, sustained")
    burst: int = Field(ge=1, description="requests a client may make at once after an idle spell")


def _env(*names: str, default: Any = None, description: str = "") -> Any:
    """A field read from the given environment names (first one documented)."""
    return Field(default=default, validation_alias=AliasChoices(*names), description=description)


class Settings(BaseSettings):
    """Everything an operator may configure. Field docs feed ``config show``."""

    model_config = SettingsConfigDict(
        env_prefix=_ENV_PREFIX,
        extra="forbid",
        validate_by_name=True,
        validate_default=True,
        frozen=True,
    )

    config_file: Path | None = _env(
        "WEKADOCS_CONFIG", "config_file", description="optional YAML file with these settings"
    )
    data_dir: Path = Field(
        Path("~/.wekadocs"), description="state of local services, embedded vectors"
    )
    cache_dir: Path = Field(
        Path("~/.cache/wekadocs"), description="downloaded Neo4j jars, query models exported to "
        "ONNX (shared by every data_dir)"
    )

    # --- Neo4j -----------------------------------------------------------
    neo4j_uri: str | None = _env(
        "NEO4J_URI", "neo4j_uri", description="external Neo4j; unset = start our own"
    )
    neo4j_user: str = _env("NEO4J_USER", "neo4j_user", default="neo4j")
    neo4j_password: SecretStr | None = _env(
        "NEO4J_PASSWORD",
        "neo4j_password",
        default=None,
        description="set as the initial password of our own server; unset = generated on its first "
        "start and kept in <secrets_dir>/NEO4J_PASSWORD (see wekadocs.neo4j_password)",
    )
    neo4j_database: str = "neo4j"
    neo4j_port: int = Field(7687, description="Bolt port of our own server")
    neo4j_version: str = Field("5.26.30", description="org.neo4j:neo4j release to run")
    neo4j_heap: str = Field("2g", description="JVM heap of our own server")
    neo4j_pagecache: str = Field("1g", description="page cache of our own server")
    neo4j_tx_timeout_s: float = Field(30.0, description="server-side transaction timeout")
    neo4j_write_timeout_s: float = Field(
        120.0, description="server-side timeout of our own write batches (ingestion, repair, deletes)")

    # --- Redis -----------------------------------------------------------
    redis_url: str | None = _env(
        "REDIS_URL", "redis_url", description="external Redis; unset = start our own"
    )
    redis_port: int = Field(6379, description="port of our own redis-server")

    # --- Vectors -----------------------------------------------------------
    qdrant_url: str | None = _env(
        "QDRANT_URL", "qdrant_url", description="Qdrant server; unset = embedded on disk"
    )
    qdrant_api_key: SecretStr | None = _env("QDRANT_API_KEY", "qdrant_api_key")
    vector_engine: Literal["edge", "local"] = Field(
        "edge",
        description="embedded engine: Qdrant Edge, or qdrant-client's local mode",
    )

    # --- Ray ---------------------------------------------------------------
    ray_address: str | None = _env(
        "RAY_ADDRESS", "ray_address", description="existing cluster; unset = local cluster"
    )
    ray_namespace: str = "wekadocs"
    ray_port: int = Field(6380, description="GCS port of our own Ray head (Redis has 6379)")
    ray_dashboard_port: int = Field(8265, description="dashboard of our own Ray head")
    ray_client_port: int = Field(10001, description="Ray Client port of our own Ray head")
    ray_num_cpus: int | None = Field(None, description="CPUs our Ray head offers; unset = all")
    ray_object_store_mb: int = Field(2048, description="object store of our own Ray head")
    ray_metrics_port: int = Field(8090, description="Prometheus metrics of our own Ray head")

    # --- Monitoring ----------------------------------------------------------
    prometheus_port: int = Field(9090, description="our own Prometheus (`services up --monitoring`), on 127.0.0.1")
    prometheus_scrape_s: float = Field(10.0, description="how often our Prometheus scrapes and evaluates its rules")

    # --- Embeddings --------------------------------------------------------
    embedding_model: str = Field(
        "all-MiniLM-L6-v2",
        description="sentence-transformers model of a fresh store: all-MiniLM-L6-v2 or all-mpnet-base-v2 "
        "(both ship in packages), or a path; later models come with `wekadocs reembed --model`",
    )
    embedding_dims: int = Field(0, ge=0, description="its vector size; 0 = a bundled model's own")
    embedding_version: str = Field("minilm-l6-v2.1", description="bump to re-embed everything")
    embedding_device: Literal["auto", "cpu", "cuda"] = Field("auto", description="where to embed")
    embedding_batch_size: int = Field(32, description="texts per forward pass")
    embedding_actors: int = Field(1, description="embedding actors in the Ray Data pool")
    embed_threads: int = Field(0, ge=0, description="torch threads per embedding actor; 0 = the cores of its "
                               "node shared by the actors, whatever CPUs Ray could reserve")
    query_precision: Literal["float32", "bfloat16"] = Field(
        "float32",
        description="the query service's model weights; bfloat16 is faster only on CPUs with native "
        "bf16 (AMX, AVX512-BF16), documents stay float32; bfloat16 runs in torch whatever query_runtime says",
    )
    query_runtime: Literal["onnx", "torch"] = Field(
        "onnx",
        description="what runs the query service's model: onnx (ONNX Runtime, a third of torch's CPU per "
        "question; exported once into cache_dir, torch where a model cannot be) or torch",
    )

    # --- Ingestion ---------------------------------------------------------
    section_token_budget: int = Field(
        256, description="split sections longer than this (MiniLM reads 256 word pieces)"
    )
    max_file_mb: float = Field(5.0, description="larger files are refused with a per-file error")
    write_batch_documents: int = Field(16, description="documents per graph transaction")

    start_timeout_s: float = Field(120.0, description="how long `services up` waits for each")

    # --- Freshness ---------------------------------------------------------
    queue_capacity: int = Field(10_000, ge=10, description="change events the queue holds; webhooks get 503 "
                                "and pollers pause from 80 % of it")
    secrets_dir: Path | None = Field(None, description="where `sources add` and `serve` keep the secrets "
                                     "sources name, one 0600 file each (unset: <data_dir>/secrets)")
    queue_max_deliveries: int = Field(5, ge=1, description="deliveries of a change event whose page keeps "
                                      "failing before it moves to the dead-letter stream")

    # --- Query service -----------------------------------------------------
    serve_host: str = Field("127.0.0.1", description="address Serve's HTTP proxy listens on")
    serve_port: int = Field(8000, description="port of Serve's HTTP proxy (MCP at /mcp)")
    mcp_allowed_hosts: list[str] = Field(
        default_factory=list,
        description="host names MCP clients use besides localhost (others get 421)",
    )

    # --- Authentication, rate limits, audit -----------------------------------
    auth: Literal["auto", "on", "off"] = Field(
        "auto", description="bearer tokens on /mcp and /metrics: auto = on unless Serve listens on loopback only",
    )
    mcp_resource_url: str | None = Field(
        None, description="the URL clients use for /mcp, advertised in the protected resource metadata; "
        "unset = http://<serve_host>:<serve_port>/mcp",
    )
    jwt_issuer: str | None = Field(None, description="issuer (iss) of JWT access tokens; unset = API tokens only")
    jwt_audience: str | None = Field(None, description="audience (aud) a JWT access token must name")
    jwt_jwks: str | None = Field(None, description="the issuer's signing keys: a JWKS file path or an https URL")
    jwt_leeway_s: float = Field(30.0, ge=0, le=300, description="clock skew allowed on exp/nbf/iat")
    rate_limits: dict[str, RateLimit] = Field(
        default_factory=lambda: {"docs:read": RateLimit(rate=20, burst=60),
                                 "metrics:read": RateLimit(rate=1, burst=10)},
        description="token bucket per client and scope, JSON: {scope: {rate: per second, burst: n}}",
    )
    audit_max_entries: int = Field(100_000, ge=100, description="tool calls the audit stream keeps (about)")

    # --- validation ------------------------------------------------------------

    @field_validator("neo4j_uri")
    @classmethod
    def _check_neo4j_uri(cls, value: str | None) -> str | None:
        schemes = {"bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc"}
        return _check_url(value, schemes)

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        return _check_url(value, {"redis", "rediss", "unix"})

    @field_validator("qdrant_url")
    @classmethod
    def _check_qdrant_url(cls, value: str | None) -> str | None:
        return _check_url(value, {"http", "https"})

    @field_validator(
        "neo4j_port", "redis_port", "ray_port", "ray_dashboard_port", "ray_client_port", "ray_metrics_port",
        "serve_port", "prometheus_port",
    )
    @classmethod
    def _check_port(cls, value: int) -> int:
        if not 1 <= value <= 65535:
            raise ValueError("must be a TCP port between 1 and 65535")
        return value

    @field_validator("mcp_resource_url", "jwt_issuer")
    @classmethod
    def _check_http_url(cls, value: str | None) -> str | None:
        return _check_url(value, {"http", "https"})

    @model_validator(mode="after")
    def _check_jwt(self) -> Settings:
        """JWT settings come as a set: an issuer without keys would accept nothing,
        keys without an audience would accept tokens minted for other services."""
        given = {name: getattr(self, name) for name in ("jwt_issuer", "jwt_audience", "jwt_jwks")}
        if any(given.values()) and not all(given.values()):
            missing = ", ".join(self.env_name(n) for n, v in given.items() if not v)
            raise ValueError(f"JWT access tokens need all of issuer, audience and JWKS; missing {missing}")
        return self

    @field_validator("neo4j_heap", "neo4j_pagecache")
    @classmethod
    def _check_memory(cls, value: str) -> str:
        if not _MEMORY_SIZE.match(value):
            raise ValueError("must be a size such as 512m or 2g")
        return value.lower()

    @field_validator("embedding_dims")
    @classmethod
    def _check_dims(cls, value: int, info: ValidationInfo) -> int:
        if value:
            return value
        model = bundled(str(info.data.get("embedding_model", "")))
        if model is None:
            raise ValueError("set it for a model that is not bundled (the size of its vectors)")
        return model.dims

    @field_validator(
        "embedding_batch_size", "embedding_actors", "section_token_budget",
        "write_batch_documents",
    )
    @classmethod
    def _check_count(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("must be a positive number")
        return value

    @field_validator("neo4j_tx_timeout_s", "neo4j_write_timeout_s", "start_timeout_s", "max_file_mb",
                     "prometheus_scrape_s")
    @classmethod
    def _check_positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be greater than 0")
        return value

    @field_validator("data_dir", "cache_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    # --- derived values ----------------------------------------------------------

    @property
    def manages_neo4j(self) -> bool:
        """True when we run Neo4j ourselves (no NEO4J_URI)."""
        return self.neo4j_uri is None

    @property
    def manages_redis(self) -> bool:
        return self.redis_url is None

    @property
    def manages_ray(self) -> bool:
        return self.ray_address is None

    @property
    def effective_ray_address(self) -> str:
        return self.ray_address or f"127.0.0.1:{self.ray_port}"

    @property
    def dashboard_url(self) -> str | None:
        """Our own head's dashboard; None for an external cluster (its operator knows)."""
        return None if self.ray_address else f"http://127.0.0.1:{self.ray_dashboard_port}"

    @property
    def auth_enabled(self) -> bool:
        """``auto`` turns bearer tokens on as soon as Serve listens beyond loopback."""
        if self.auth == "auto":
            return not is_loopback(self.serve_host)
        return self.auth == "on"

    @property
    def effective_mcp_resource_url(self) -> str:
        host = "127.0.0.1" if self.serve_host in ("0.0.0.0", "::") else self.serve_host
        host = f"[{host}]" if ":" in host else host
        return self.mcp_resource_url or f"http://{host}:{self.serve_port}/mcp"

    @property
    def bolt_uri(self) -> str:
        return self.neo4j_uri or f"bolt://127.0.0.1:{self.neo4j_port}"

    @property
    def effective_redis_url(self) -> str:
        return self.redis_url or f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def effective_secrets_dir(self) -> Path:
        """The folder of source secrets (see ``wekadocs.secrets``)."""
        return (self.secrets_dir or self.data_dir / "secrets").expanduser().absolute()

    @property
    def vectors_dir(self) -> Path:
        """Where the embedded vector engine keeps its collections."""
        return self.data_dir / "vectors" / self.vector_engine

    @property
    def vector_alias(self) -> str:
        """The name readers use; it points at the live collection."""
        return f"sections-{SCHEMA_VERSION}"

    @property
    def vector_collection(self) -> str:
        """The collection a fresh store starts with (later ones come from ``wekadocs reembed``)."""
        return collection_name(self.embedding_version)

    def masked(self) -> dict[str, Any]:
        """Effective values for display: secrets and URL passwords hidden."""
        shown: dict[str, Any] = {}
        for name, value in self.model_dump().items():
            if isinstance(value, SecretStr):
                value = "********" if value.get_secret_value() else ""
            elif isinstance(value, str) and "://" in value:
                value = _mask_url_password(value)
            elif isinstance(value, Path):
                value = str(value)
            shown[name] = value
        return shown

    @classmethod
    def env_name(cls, field: str) -> str:
        """The environment variable that sets ``field``."""
        info = cls.model_fields[field]
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            return str(alias.choices[0])
        return f"{_ENV_PREFIX}{field.upper()}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Precedence: explicit arguments > environment > YAML file > defaults.
        return (init_settings, env_settings, _YamlFileSource(settings_cls, init_settings, env_settings))


class _YamlFileSource(PydanticBaseSettingsSource):
    """Reads the YAML file named by ``config_file`` (argument or WEKADOCS_CONFIG)."""

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
    ) -> None:
        super().__init__(settings_cls)
        self._init = init_settings
        self._env = env_settings

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ below returns the whole mapping at once

    def __call__(self) -> dict[str, Any]:
        # Sources key aliased fields by their first alias.
        key = Settings.env_name("config_file")
        path = self._init().get(key) or self._env().get(key)
        if not path:
            return {}
        path = Path(path).expanduser()
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise SettingsError([("WEKADOCS_CONFIG", f"cannot read {path}: {exc.strerror}")]) from exc
        except yaml.YAMLError as exc:
            raise SettingsError([("WEKADOCS_CONFIG", f"{path} is not valid YAML: {exc}")]) from exc
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise SettingsError([("WEKADOCS_CONFIG", f"{path} must hold a mapping of settings")])
        return data


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    """Build the effective settings or raise ``SettingsError`` naming each bad one."""
    if config_file is not None:
        overrides["config_file"] = config_file
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError([_describe(err) for err in exc.errors()]) from exc


def _describe(error: Any) -> tuple[str, str]:
    location = error.get("loc") or ("settings",)
    field = str(location[0])
    if field in Settings.model_fields:
        name = f"{Settings.env_name(field)} ({field})"
    else:
        name = field
    message = error.get("msg", "invalid value")
    if error.get("type") == "extra_forbidden":
        message = "unknown setting"
    return name, message.removeprefix("Value error, ")


def _check_url(value: str | None, schemes: set[str]) -> str | None:
    if value is None or value == "":
        return None
    parts = urlsplit(value)
    if parts.scheme not in schemes:
        allowed = ", ".join(sorted(f"{s}://" for s in schemes))
        raise ValueError(f"{value!r} must start with one of {allowed}")
    if parts.scheme != "unix" and not parts.hostname:
        raise ValueError(f"{value!r} has no host")
    return value


def _mask_url_password(url: str) -> str:
    parts = urlsplit(url)
    if not parts.password:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    netloc = f"{user}:********@{host}{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
