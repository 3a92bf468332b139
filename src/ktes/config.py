"""Every setting of ktes, from ``KTES_*`` environment variables and an optional YAML file.

Settings are flat, grouped by prefix (``local_*``, ``k8s_*``, ``s3_*``, ``ftp_*``, ``http_*``), so each one
has the obvious environment variable: ``k8s_namespace`` is ``KTES_K8S_NAMESPACE``. List values in the
environment are JSON (``KTES_LOCAL_RUN_ARGS='["--ulimit","nofile=1024:1024"]'``). The YAML file is
``--config`` / ``KTES_CONFIG`` and holds the same keys. Precedence: command-line options, environment,
YAML file, defaults. Settings are passed down explicitly, never read from a global deep inside.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, YamlConfigSettingsSource

from ktes.tes.validation import Limits

#: settings that were renamed: old name -> new name (the old one still works, with a warning).
RENAMED = {
    "http_retries": "transfer_retries",
    "http_retry_backoff_seconds": "transfer_retry_backoff_seconds",
}


def default_data_dir() -> Path:
    """A per-user data directory (XDG on Linux)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "ktes"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KTES_", extra="ignore", validate_default=True)

    # --- server and store -------------------------------------------------------------------------
    config: Path | None = Field(default=None, description="YAML file with any of these settings")
    data_dir: Path = Field(default_factory=default_data_dir, description="Where the SQLite DB and work dirs live")
    database_url: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy URL, e.g. postgresql+psycopg://u:p@host/db (default: SQLite in data_dir)",
    )
    database_reads_at_once: int = Field(
        default=2,
        ge=1,
        le=64,
        description="PostgreSQL: reads of the API in flight at once, for single tasks and for pages each (the "
        "event loop serves others meanwhile); 2 suits a database on the same few CPUs, more one on other machines",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    backend: Literal["local", "kubernetes"] = "local"
    log_level: str = "info"
    log_format: Literal["plain", "json"] = Field(default="plain", description="plain lines, or one JSON object a line")
    shutdown_seconds: float = Field(
        default=20.0, description="On SIGTERM: how long requests in flight may take before ktes stops anyway"
    )
    metrics_enabled: bool = Field(default=True, description="Serve /metrics and count HTTP requests")
    retention_days: float | None = Field(
        default=None, description="Purge finished tasks created more than this many days ago (default: keep all)"
    )
    engine_enabled: bool = Field(default=True, description="Run the engine in this process (API-only replicas: false)")
    engine_poll_seconds: float = Field(default=2.0, description="Seconds between the engine's own looks for work")
    entrypoint_path: Path | None = Field(
        default=None,
        description="The static executor helper both backends run executors through "
        "(default: the one shipped in the ktes package for this machine's architecture)",
    )

    # --- API limits -------------------------------------------------------------------------------
    cors_origins: list[str] = Field(default_factory=lambda: ["*"], description="Web origins that may read (CORS)")
    cors_write_origins: list[str] = Field(
        default_factory=list, description="Web origins that may also create and cancel tasks (e.g. a web client's)"
    )
    allowed_hosts: list[str] | None = Field(
        default=None,
        description="Host names served besides the loopback ones (default: loopback names only when listening "
        "on loopback, any name otherwise)",
    )
    service_id: str = Field(default="local.ktes", description="service-info id (reverse domain name)")
    service_organization_name: str = Field(default="ktes", description="service-info organization.name")
    service_organization_url: str = Field(default="https://ktes.invalid/", description="service-info organization.url")
    service_environment: str | None = Field(default=None, description="service-info environment: prod, test, dev")
    max_body_bytes: int = 16 * 1024 * 1024
    # the bounds on one task have their one home in ktes.tes.validation.Limits
    max_content_bytes: int = Limits.max_content_bytes
    max_executors: int = Limits.max_executors
    max_inputs: int = Limits.max_inputs
    max_outputs: int = Limits.max_outputs
    max_tags: int = Limits.max_tags
    page_size_default: int = 256
    page_size_max: int = 2047
    list_page_max_bytes: int = Field(
        default=8 * 1024 * 1024,
        description="ListTasks pages (BASIC, FULL) stop before this many bytes of tasks (at least one task each)",
    )
    tes_states: Literal["1.1", "1.0"] = Field(
        default="1.1",
        description="1.0: show TES 1.1's CANCELING as CANCELED and PREEMPTED as SYSTEM_ERROR (clients that know only "
        "TES 1.0's states, e.g. pydantic-tes / Galaxy)",
    )
    backend_parameters_strict: bool = Field(
        default=Limits.backend_parameters_strict,
        description="Reject unsupported backend_parameters keys even when the task does not ask",
    )

    # --- who is asking (see docs/auth.md) ---------------------------------------------------------
    auth: str = Field(default="none", description="none, basic, oidc, or basic,oidc")
    auth_users_file: Path | None = Field(default=None, description="htpasswd-style file of bcrypt users (basic)")
    admins: list[str] = Field(default_factory=list, description="User names that see and cancel every task")
    oidc_issuer: str | None = Field(default=None, description="OpenID provider; its discovery document is read")
    oidc_audience: str | None = Field(default=None, description="A token's aud must contain this")
    oidc_user_claim: str = Field(default="sub", description="The claim that names the user")
    oidc_groups_claim: str = Field(default="groups", description="The claim listing the user's groups")
    oidc_admin_groups: list[str] = Field(default_factory=list, description="Members of these groups are admins")
    oidc_algorithms: list[str] = Field(
        default_factory=lambda: ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"],
        description="Signature algorithms accepted (asymmetric only: none and HMAC are always refused)",
    )
    oidc_leeway_seconds: float = Field(default=30.0, description="Clock skew allowed on exp and nbf")
    oidc_jwks_refresh_seconds: float = Field(
        default=10.0, description="At most one JWKS fetch per this many seconds (an unknown kid triggers one)"
    )
    oidc_client_id: str | None = Field(
        default=None, description="The dashboard's client id at the provider: turns on its Sign in (code + PKCE)"
    )
    oidc_client_secret: SecretStr | None = Field(
        default=None, description="That client's secret, when the provider makes it a confidential client"
    )
    oidc_scope: str = Field(default="openid", description="Scopes the dashboard's sign-in asks for")
    user_max_active_tasks: int | None = Field(
        default=None, description="Per-user limit on tasks not yet ended (over it: 429 with Retry-After)"
    )
    file_user_roots: list[str] = Field(
        default_factory=list,
        description="With auth on, file:// is allowed only under these roots, '{user}' replaced by the owner",
    )

    # --- local backend ----------------------------------------------------------------------------
    local_runtime: str | None = Field(default=None, description="Container CLI: podman or docker (auto-detected)")
    local_global_args: list[str] | None = Field(default=None, description="Arguments before the subcommand (auto)")
    local_run_args: list[str] | None = Field(default=None, description="Extra arguments to every run (auto)")
    local_network: str = Field(
        default="default",
        description="Task containers' network: default (the runtime's own, checked at start), none, host, or a name",
    )
    local_max_cpus: float | None = Field(default=None, description="CPU cores tasks may use at once (default: all)")
    local_max_ram_gb: float | None = Field(default=None, description="RAM tasks may use at once (default: 80%)")
    local_max_staging: int = Field(
        default=4, ge=1, description="Tasks staging inputs (or staged and waiting for CPU/RAM) at once"
    )
    local_keep_workdirs: bool = False
    local_log_tail_bytes: int = Field(default=64 * 1024, description="stdout/stderr kept in executor logs")
    local_pull: Literal["never", "missing"] = Field(
        default="missing", description="Pull images that are not present (missing) or fail at once (never)"
    )
    local_pull_timeout_seconds: float = Field(default=300.0, description="Give up pulling a missing image after")

    # --- kubernetes backend -----------------------------------------------------------------------
    k8s_namespace: str = "default"
    k8s_image: str = Field(default="localhost/ktes:latest", description="Image of the stage-in/stage-out containers")
    k8s_image_pull_policy: str = "IfNotPresent"
    k8s_kubeconfig: Path | None = None
    k8s_storage_class: str | None = Field(default=None, description="Use a generic ephemeral volume of this class")
    k8s_service_account: str | None = None
    k8s_ttl_seconds_after_finished: int = 300
    k8s_image_pull_timeout_seconds: float = 120.0
    k8s_unschedulable_timeout_seconds: float = 600.0
    k8s_resync_seconds: float = 60.0
    k8s_max_running_tasks: int = 1000
    k8s_preemptible_node_selector: dict[str, str] = Field(default_factory=dict)
    k8s_preemptible_tolerations: list[dict[str, Any]] = Field(default_factory=list)
    k8s_zone_label: str = "topology.kubernetes.io/zone"
    k8s_queue_label: str = Field(default="kueue.x-k8s.io/queue-name", description="Label the 'queue' parameter sets")
    k8s_user_queues: dict[str, str] = Field(
        default_factory=dict, description="Owner -> Kueue LocalQueue name ('*' for everyone else)"
    )
    k8s_lease_name: str | None = Field(default=None, description="The engine's Lease (default: ktes-engine-<id>)")
    k8s_log_tail_bytes: int = 64 * 1024
    k8s_entrypoint_path: Path | None = Field(
        default=None,
        description="The static executor helper put in each namespace's ConfigMap, when the nodes' "
        "architecture differs from this machine's (default: entrypoint_path)",
    )
    k8s_dns_policy: str = Field(default="ClusterFirst", description="Task pods' dnsPolicy (Default: no cluster DNS)")
    k8s_executor_image_pull_policy: str | None = Field(
        default=None, description="Executors' imagePullPolicy (default: Kubernetes' own: Always for :latest)"
    )
    k8s_active_deadline_seconds: int | None = Field(
        default=None, description="Default Job activeDeadlineSeconds (backend parameter deadline_seconds overrides)"
    )
    k8s_default_disk_gb: float = Field(default=10.0, description="Workspace size when disk_gb is unset (PVC only)")
    k8s_stage_requests: dict[str, str] = Field(
        default_factory=lambda: {"cpu": "100m", "memory": "128Mi"},
        description="Requests of the stage-in/stage-out containers",
    )
    k8s_stage_limits: dict[str, str] = Field(
        default_factory=lambda: {"memory": "1Gi"}, description="Limits of the stage-in/stage-out containers"
    )
    k8s_keep_finished_jobs: bool = Field(
        default=False, description="Keep a task's Job after its report is read (ttlSecondsAfterFinished still ends it)"
    )
    k8s_installation_id: str | None = Field(
        default=None, description="Label value marking this installation's objects (default: from the database)"
    )
    k8s_file_volume: str | None = Field(
        default=None,
        description="Shared file system for file:// on Kubernetes: hostpath:/PATH or pvc:NAME:/PATH (mounted at /PATH)",
    )
    k8s_wait_note_seconds: float = Field(
        default=60.0, description="A task waiting this long (scheduling, image pull, staging) gets a log saying so"
    )
    k8s_lease_duration_seconds: float = Field(default=15.0, description="A leader that stops renewing loses it after")
    k8s_lease_renew_seconds: float = Field(default=5.0, description="How often the leader renews the Lease")

    # --- filer ------------------------------------------------------------------------------------
    file_allowed_roots: list[Path] | None = Field(
        default=None,
        description="file:// URLs and plain paths are allowed only under these roots "
        "(default: the home directory and the temp directory with the local backend, none on Kubernetes)",
    )
    http_timeout_seconds: float = 60.0
    transfer_retries: int = Field(default=5, description="Retries of a transient transfer failure, every scheme")
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_path_style: bool = False
    ftp_user: str | None = None
    ftp_password: SecretStr | None = None
    transfer_retry_backoff_seconds: float = Field(
        default=1.0, description="First delay before retrying a transient transfer failure (doubles, at most 30 s)"
    )
    transfer_retry_max_seconds: float = Field(
        default=10.0,
        description="Stop retrying a transient transfer failure once this much time has gone on the transfer",
    )
    s3_multipart_threshold_mb: int = Field(default=64, description="Files at least this big are uploaded in parts")
    s3_multipart_chunk_mb: int = Field(default=16, description="Part size of multipart uploads")
    s3_max_concurrency: int = Field(default=4, description="Parts of one upload sent at once")
    drs_insecure_hosts: list[str] = Field(
        default_factory=list, description="DRS hosts (host or host:port) contacted over plain http, e.g. in tests"
    )

    @model_validator(mode="before")
    @classmethod
    def take_renamed(cls, data: Any) -> Any:
        """Old names keep working, with a warning (from any source: arguments, YAML, environment)."""
        if not isinstance(data, dict):
            return data
        for old, new in RENAMED.items():
            value = data.pop(old, None)
            if value is None:
                value = os.environ.get(f"KTES_{old.upper()}")
            if value is not None:
                warnings.warn(
                    f"the setting {old} (KTES_{old.upper()}) is deprecated: it is now {new} (KTES_{new.upper()})",
                    FutureWarning,
                    stacklevel=2,
                )
                if data.get(new) in (None, cls.model_fields[new].default):  # the new name, when set, wins
                    data[new] = value
        return data

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        yaml_file = os.environ.get("KTES_CONFIG")
        if yaml_file:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=yaml_file))
        return tuple(sources)

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return f"sqlite:///{self.data_dir / 'ktes.db'}"


def load(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from the environment and the YAML file, with ``overrides`` (CLI options) on top."""
    if config_file is not None:
        os.environ["KTES_CONFIG"] = str(config_file)
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
