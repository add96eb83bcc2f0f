"""One settings tree for every herald process.

Sources, later wins: defaults < config file (``config.json``, the classic ``producer`` /
``progress_monitor`` / ``sender[]`` layout included) < ``HERALD_*`` environment variables <
command-line flags. :func:`load_settings` is called once, in a ``main()``, and the result is
passed down; nothing here reads the environment at import time.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from herald.errors import ConfigError
from herald.scenarios.base import Parameters
from herald.scenarios.retail import RetailSettings
from herald.scenarios.telemetry import TelemetrySettings

ENV_PREFIX = "HERALD_"
CONFIG_ENV = "HERALD_CONFIG"
DEFAULT_CONFIG_FILE = "config.json"

# Classic layout key -> herald key. The classic file keeps working unchanged.
_CLASSIC_KEYS: dict[str, str] = {"progress_monitor": "monitor", "sender": "senders"}

Engine = Literal["tansu", "kafka"]
SecurityProtocol = Literal["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"]
SaslMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]
Compression = Literal["none", "gzip", "snappy", "lz4", "zstd"]
ENGINES: tuple[Engine, ...] = ("tansu", "kafka")
LOCAL_BROKERS = (1, 3)
LatencyDistribution = Literal["exponential", "constant", "uniform", "normal"]


class _Section(Parameters):
    """A platform section (a scenario's own derive from :class:`Parameters` too)."""


class KafkaSettings(_Section):
    """Where Kafka is and how herald talks to it."""

    bootstrap: str | None = Field(
        None,
        description="Kafka bootstrap servers (host:port,...). Unset: start the embedded broker.",
    )
    engine: Engine = Field(
        "tansu",
        description="The broker herald starts when `bootstrap` is unset: `tansu` (embedded, "
        "in memory, nothing to install) or `kafka` (Apache Kafka in KRaft mode from its jars: "
        "Java 17+, and Maven or KAFKA_HOME; docs/engines.md). Ignored when `bootstrap` is set.",
    )
    brokers: int = Field(
        1,
        description="Nodes of the local Apache Kafka engine: 1, or 3 (topics with replication "
        "factor 3 and min.insync.replicas 2).",
    )
    namespace: str = Field(
        "",
        pattern=r"^[A-Za-z0-9._-]*$",
        description="Prefix for every topic, consumer group and transactional id "
        "(isolates tests or tenants sharing one cluster).",
    )
    partitions: int = Field(
        12, ge=1, le=10_000, description="Partitions of each topic herald creates."
    )
    replication_factor: int = Field(
        1, ge=1, le=10, description="Replication factor of each topic herald creates."
    )
    session_timeout_ms: int | None = Field(
        None,
        ge=500,
        le=3_600_000,
        description="Consumer-group session timeout. Unset: 4000 on the embedded broker "
        "(it holds every group join for half of it, in whole seconds), Kafka's default "
        "elsewhere.",
    )
    heartbeat_interval_ms: int | None = Field(
        None, ge=100, le=3_600_000, description="Consumer heartbeat interval. Unset: as above."
    )
    fetch_wait_max_ms: int | None = Field(
        None,
        ge=1,
        le=60_000,
        description="Longest a consumer's fetch waits at the broker for records to arrive. "
        "Unset: librdkafka's 500. The embedded broker answers a waiting fetch only when the "
        "wait ends, not when records arrive, so an idle consumer there sees a new record up "
        "to this late; 50 took 0.07-0.25 s off a run's start but cost its broker 1.3-2 µs "
        "of CPU a message (1M runs side by side), so it is not the default. Consumers of "
        "rare records that someone waits for (run requests, the control topic) always wait "
        "10 ms.",
    )
    transaction_timeout_ms: int = Field(
        10_000,
        ge=1_000,
        le=900_000,
        description="How long the broker keeps a dead sender's transaction open before "
        "aborting it (bounds the stall after a sender dies).",
    )
    connect_timeout_secs: float = Field(
        30.0, gt=0, le=3600, description="How long a service waits for the broker at start."
    )
    security_protocol: SecurityProtocol = Field(
        "plaintext",
        description="How clients connect: `plaintext`, `ssl` (TLS), `sasl_plaintext` or "
        "`sasl_ssl` (SASL over TLS). docs/security.md.",
    )
    sasl_mechanism: SaslMechanism = Field(
        "SCRAM-SHA-512", description="The SASL mechanism, with a `sasl_*` protocol."
    )
    sasl_username: str | None = Field(
        None, min_length=1, description="The SASL user, with a `sasl_*` protocol."
    )
    sasl_password: SecretStr | None = Field(
        None,
        exclude=True,  # never written to a settings file or a log
        description="The SASL user's password (`HERALD_KAFKA_SASL_PASSWORD`); never logged, "
        "never written to a settings file.",
    )
    ssl_ca_location: Path | None = Field(
        None,
        description="PEM file of the CA certificate(s) that sign the brokers' certificates, "
        "with `ssl` or `sasl_ssl`. Unset: the system's CA certificates.",
    )
    ssl_certificate_location: Path | None = Field(
        None,
        description="PEM file of this client's certificate (mutual TLS), with `ssl_key_location`.",
    )
    ssl_key_location: Path | None = Field(
        None, description="PEM file of this client's private key (mutual TLS)."
    )
    ssl_key_password: SecretStr | None = Field(
        None,
        exclude=True,
        description="The client key's passphrase, if it is encrypted "
        "(`HERALD_KAFKA_SSL_KEY_PASSWORD`); never logged.",
    )
    compression: Compression = Field(
        "lz4",
        description="How every producer compresses its record batches (librdkafka "
        "`compression.type`). lz4 against none, 1M-message SMS runs side by side: the embedded "
        "broker spent 5.5-5.8 µs of CPU a message instead of 8.8 and held 205-210 MiB instead "
        "of 600, all processes 3-4 µs a message less. While it is on, the recorder and the "
        "monitor, which read every partition of the results, fetch at most 32 KiB a partition "
        "at a time (librdkafka bounds prefetch in compressed bytes: with its usual bounds the "
        "recorder reached 132-135 MiB). A retail run at full speed, whose events go from the "
        "producer to the recorder in one hop, was 8-11% slower with lz4 for about the same "
        "CPU (two runs side by side). `none` to turn it off.",
    )
    client_config: dict[str, str] = Field(
        default_factory=dict,
        description="Extra librdkafka properties for every client. They win over the settings "
        "above and herald's own client defaults (`linger.ms`, `fetch.max.bytes`, ...); only "
        "what a client needs to be correct (its `transactional.id`, a run request's "
        "`linger.ms` 0, ...) is set after them.",
    )

    @field_validator("ssl_ca_location", "ssl_certificate_location", "ssl_key_location")
    @classmethod
    def _readable_file(cls, path: Path | None) -> Path | None:
        if path is not None and not path.is_file():
            raise ValueError(f"no such file: {path}")
        return path

    @model_validator(mode="after")
    def _security_complete(self) -> KafkaSettings:
        protocol = self.security_protocol
        sasl, tls = protocol.startswith("sasl_"), protocol.endswith("ssl")
        if sasl and (self.sasl_username is None or self.sasl_password is None):
            missing = "sasl_username" if self.sasl_username is None else "sasl_password"
            raise ValueError(f"kafka.{missing} is needed with kafka.security_protocol = {protocol}")
        if not sasl and self.sasl_username is not None:
            raise ValueError(
                "kafka.sasl_username is set but kafka.security_protocol is "
                f"{protocol}: use sasl_plaintext or sasl_ssl"
            )
        files = ("ssl_ca_location", "ssl_certificate_location", "ssl_key_location")
        given = [f for f in files if getattr(self, f) is not None]
        if given and not tls:
            raise ValueError(
                f"kafka.{given[0]} is set but kafka.security_protocol is {protocol}: "
                "use ssl or sasl_ssl"
            )
        if (self.ssl_certificate_location is None) != (self.ssl_key_location is None):
            raise ValueError(
                "kafka.ssl_certificate_location and kafka.ssl_key_location go together "
                "(a client certificate and its private key)"
            )
        return self

    def security_properties(self) -> dict[str, str]:
        """The librdkafka properties of these security settings (passwords included: for
        a client's configuration only, never for a log)."""
        props = {"security.protocol": self.security_protocol.upper()}
        if self.security_protocol.startswith("sasl_"):
            assert self.sasl_username is not None and self.sasl_password is not None
            props["sasl.mechanism"] = self.sasl_mechanism
            props["sasl.username"] = self.sasl_username
            props["sasl.password"] = self.sasl_password.get_secret_value()
        for name in ("ssl_ca_location", "ssl_certificate_location", "ssl_key_location"):
            value = getattr(self, name)
            if value is not None:
                props[name.replace("_", ".")] = str(value)
        if self.ssl_key_password is not None:
            props["ssl.key.password"] = self.ssl_key_password.get_secret_value()
        return props

    @field_validator("brokers")
    @classmethod
    def _brokers_of_engine(cls, brokers: int, info: ValidationInfo) -> int:
        # A field rule (engine comes first): reported on `brokers`, beside any other error.
        if brokers not in LOCAL_BROKERS:
            raise ValueError("a local Apache Kafka cluster has 1 or 3 brokers")
        if brokers != 1 and info.data.get("engine") == "tansu":
            raise ValueError(
                f"{brokers} brokers need kafka.engine = kafka (Tansu runs one), e.g. "
                "--engine kafka or HERALD_KAFKA_ENGINE=kafka"
            )
        return brokers


class DatabaseSettings(_Section):
    """Where Postgres is."""

    url: str | None = Field(
        None,
        description="SQLAlchemy URL (postgresql+psycopg://user:pass@host:port/db). "
        "Unset: start the embedded PostgreSQL under `home`.",
    )
    connect_timeout_secs: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="How long a service waits for the database at start; and how long "
        "`herald sim` waits for it to answer again mid-run before it gives up (exit 4).",
    )

    @field_validator("url")
    @classmethod
    def _postgres_only(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("postgresql://", "postgresql+psycopg://")):
            raise ValueError("must be a postgresql:// or postgresql+psycopg:// URL")
        return value


class ProducerSettings(_Section):
    """What a run is asked with when the caller does not say (``sim.run``, ``herald submit``)."""

    scenario: str = Field(
        "sms",
        pattern=r"^[a-z][a-z0-9_]*$",
        description="The scenario a run is of (`herald.scenarios`); `sms` is the default.",
    )
    num_messages: int = Field(
        10_000, ge=1, le=1_000_000_000, description="Messages in a run (the classic key)."
    )
    rate: float | None = Field(
        None, gt=0, description="Messages per second. Unset: as fast as the broker takes them."
    )
    seed: int | None = Field(
        None, ge=0, description="Seed for reproducible content. Unset: a random seed, recorded."
    )


class WorkerSettings(_Section):
    """One simulated worker: one process of a scenario's worker step (the default scenario's
    workers are its senders), a member of the workers' consumer group."""

    mean_wait_time: float = Field(
        0.1,
        ge=0,
        le=3600,
        description="Mean simulated work (send) time, seconds (the classic key).",
    )
    failure_rate: float = Field(
        0.1, ge=0, le=1, description="Probability that one attempt fails (the classic key)."
    )
    latency_distribution: LatencyDistribution = Field(
        "exponential", description="Shape of the simulated work time around its mean."
    )
    latency_stddev: float | None = Field(
        None, ge=0, description="Standard deviation for `normal`. Unset: a quarter of the mean."
    )
    max_in_flight: int = Field(
        5000,
        ge=1,
        le=1_000_000,
        description="Messages a worker has in flight at once; 1 is a one-at-a-time worker.",
    )
    max_attempts: int = Field(
        1, ge=1, le=100, description="Attempts before a message counts as failed."
    )
    retry_backoff: float = Field(
        0.0, ge=0, le=3600, description="Seconds between attempts, doubled after each failure."
    )


class MonitorSettings(_Section):
    """The progress monitor (the classic `progress_monitor` section)."""

    kind: Literal["file", "terminal", "web"] = Field(
        "file",
        description="`file`: write to `output_location`; `terminal`: the same, to stdout. "
        "Either way a TTY gets a live table, anything else one plain line per refresh. "
        "`web`: also serve the run's live page (`web_host`:`web_port`) during `sim.run`.",
    )
    output_location: str = Field(
        "stdout", min_length=1, description="`stdout`, `stderr` or a file path."
    )
    refresh_secs: float = Field(1.0, gt=0, le=3600, description="Seconds between refreshes.")
    web_host: str = Field(
        "127.0.0.1", min_length=1, description="Address the `web` monitor listens on."
    )
    web_port: int = Field(
        8000, ge=0, le=65535, description="Port of the `web` monitor; 0 picks a free one."
    )


class RecorderSettings(_Section):
    """Results -> Postgres."""

    batch_size: int = Field(
        5000, ge=1, le=1_000_000, description="Most results written in one database transaction."
    )
    batch_timeout_secs: float = Field(
        0.05, gt=0, le=60, description="Longest wait to fill a batch before writing it."
    )


class TimersSettings(_Section):
    """Timers: what the API accepts, and how callbacks are signed (docs/timers.md)."""

    max_delay_secs: float = Field(
        30 * 24 * 3600.0,
        gt=0,
        le=366 * 24 * 3600.0,
        description="Latest due time a timer may ask for, seconds from now (the API's upper "
        "bound; 30 days).",
    )
    deny_networks: list[str] = Field(
        default_factory=lambda: ["169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "0.0.0.0/8"],
        description="Networks a callback URL may not resolve to (CIDR): link-local and cloud "
        "metadata addresses by default. Add 127.0.0.0/8 and the private ranges in production.",
    )
    allow_networks: list[str] = Field(
        default_factory=list,
        description="Networks allowed even when a deny rule covers them (CIDR).",
    )
    signing_secrets: list[SecretStr] = Field(
        default_factory=list,
        exclude=True,  # never written to a settings file or a log
        description="Standard Webhooks secrets (`whsec_<base64>`) that sign every callback; "
        "several during a rotation, the first signs too. Unset: the secret kept in "
        "`<home>/webhook-secret` (made once, mode 0600) is used.",
    )


class SchedulerSettings(_Section):
    """The scheduler: claims due items from Postgres and fires them on time."""

    lease_secs: float = Field(
        5.0,
        ge=0.5,
        le=3600,
        description="How long a claim holds; a dead replica's claims "
        "expire after this and another replica fires them.",
    )
    lookahead_secs: float = Field(
        2.0,
        ge=0,
        le=3600,
        description="How far ahead it claims: claimed items wait in an "
        "in-process timer heap and fire at their due time, not a poll later.",
    )
    batch: int = Field(
        1000,
        ge=1,
        le=100_000,
        description="Most items claimed at once (a full batch is followed by another claim "
        "at once).",
    )
    poll_secs: float = Field(
        1.0,
        gt=0,
        le=60,
        description="Longest sleep between claims when nothing is due "
        "(a new item due soon wakes it at once: LISTEN/NOTIFY).",
    )


class NotifierSettings(_Section):
    """The notifier: POSTs timers' callbacks, retries, keeps the ledger."""

    timeout_secs: float = Field(10.0, gt=0, le=300, description="One attempt's timeout.")
    max_attempts: int = Field(8, ge=1, le=100, description="Attempts per callback, at most.")
    backoff_base_secs: float = Field(
        0.5,
        gt=0,
        le=3600,
        description="Exponential backoff with full jitter: the first "
        "retry waits up to this, doubling.",
    )
    backoff_cap_secs: float = Field(30.0, gt=0, le=86400, description="Longest single wait.")
    deadline_secs: float = Field(
        600.0, gt=0, le=7 * 86400, description="No attempt later than this after the first."
    )
    max_in_flight_per_host: int = Field(
        16, ge=1, le=10_000, description="Requests in flight to one host at once."
    )
    max_pending: int = Field(
        2000, ge=1, le=1_000_000, description="Callbacks being delivered at once (all hosts)."
    )
    delivery_lease_secs: float = Field(
        60.0,
        ge=1,
        le=86400,
        description="How long a notifier holds a timer it delivers: a "
        "killed notifier's timer is delivered again (same webhook-id) after this.",
    )


MIN_TOKEN_LENGTH = 16


class WebSettings(_Section):
    """The web app's authentication and request limits (docs/security.md)."""

    api_token: SecretStr | None = Field(
        None,
        # Never dumped: not into the settings file handed to child processes, nor anywhere else.
        exclude=True,
        description="Bearer token that every write request (POST, PUT, PATCH, DELETE) must "
        "send as `Authorization: Bearer <token>`, and reads too with `protect_reads`; at least "
        f"{MIN_TOKEN_LENGTH} characters. Unset: no authentication, and `herald web` serves only "
        "on loopback addresses unless `allow_unauthenticated`. Never logged or written out.",
    )
    protect_reads: bool = Field(
        False,
        description="Require the token for reads (GET, HEAD, OPTIONS) too, except "
        "`/api/health`. A browser cannot send the header, so the dashboard is then unavailable: "
        "for API-only deployments.",
    )
    allow_unauthenticated: bool = Field(
        False,
        description="Let `herald web` serve on a non-loopback address without `api_token` (e.g. "
        "behind a proxy that authenticates); otherwise that stops at start-up with exit code 2.",
    )
    max_body_bytes: int = Field(
        64 * 1024,
        ge=1024,
        le=16 * 1024 * 1024,
        description="Largest request body, bytes; a larger one gets 413 without being read. A "
        "run request is under 200 bytes.",
    )
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="Processes serving the app on one port. Above 1: gunicorn's pre-fork server, "
        "each process with `herald web --threads` threads (an open dashboard page holds one); "
        "1: waitress inside the `herald web` process. `stack.up --profile=all` runs 2.",
    )
    max_json_depth: int = Field(
        32,
        ge=2,
        le=1000,
        description="Deepest nesting of arrays and objects in a JSON body; deeper gets 422 "
        "before it is parsed (a parser recurses once per level). herald's bodies nest 1 deep.",
    )

    @model_validator(mode="after")
    def _token_long_enough(self) -> WebSettings:
        # Checked here, not as a field constraint: a field error would echo the token.
        token = self.api_token
        if token is not None and len(token.get_secret_value()) < MIN_TOKEN_LENGTH:
            raise ValueError(
                f"web.api_token must be at least {MIN_TOKEN_LENGTH} characters "
                "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        return self


class LimitsSettings(_Section):
    """What one run may ask for: checked by the API, `herald submit` and `sim.run`."""

    max_messages: int = Field(
        5_000_000,
        ge=1,
        le=1_000_000_000,
        description="Most messages in one run. The embedded broker keeps every record in memory "
        "(about 160 MB per million ~150-byte records per topic) and a run writes each message to "
        "two topics (outbound and results): 5,000,000 messages hold about 1.6-2 GB of broker "
        "memory until the broker stops, and add 5,000,000 rows to Postgres.",
    )
    min_rate: float = Field(
        1.0,
        gt=0,
        le=10_000_000,
        description="Lowest producer rate a run may ask for, messages/s. A slower run is a "
        "trickle that holds its producer (which makes runs one after another) for hours.",
    )
    max_run_secs: float = Field(
        3000.0,
        gt=0,
        le=3600,
        description="Longest a rate-limited run may take to produce (messages / rate), seconds. "
        "The producer does not poll for run requests while it produces a run, and a consumer "
        "that has not polled for its max.poll.interval.ms (one hour) is evicted from its group: "
        "its run would be produced again by the next member.",
    )
    max_concurrent_runs: int = Field(
        4,
        ge=1,
        le=100_000,
        description="Most runs not yet finished (counted in Postgres) when `POST /api/runs` "
        "accepts another; beyond it, 429. Four of the largest runs hold about 6.4-8 GB of embedded "
        "broker memory; a producer makes runs one after another, so more would only queue.",
    )
    stale_run_secs: float = Field(
        3600.0,
        gt=0,
        le=30 * 24 * 3600,
        description="A run still going whose row has not changed for this long (no outcome "
        "recorded) is marked `abandoned` by the next `POST /api/runs` and no longer counts "
        "toward `max_concurrent_runs`: its request was lost (an embedded broker forgets "
        "everything when it stops) or its services are gone.",
    )


def _default_senders() -> list[WorkerSettings]:
    # Four workers that differ, so the per-worker table shows something worth reading.
    return [
        WorkerSettings(mean_wait_time=0.05, failure_rate=0.02),
        WorkerSettings(mean_wait_time=0.1, failure_rate=0.05),
        WorkerSettings(mean_wait_time=0.2, failure_rate=0.1, latency_distribution="uniform"),
        WorkerSettings(mean_wait_time=0.08, failure_rate=0.2, latency_distribution="normal"),
    ]


class Settings(BaseSettings):
    """The whole settings tree."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="_",
        env_nested_max_split=1,
        env_file=".env",
        extra="forbid",
        frozen=True,
    )

    home: Path = Field(
        Path(".herald"),
        description="Where the embedded database, run files and service logs live.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Log level of every service (any case: `info` is `INFO`)."
    )
    log_file: Path | None = Field(
        None,
        description="Also append every service's log to this file (the classic LOG_FILENAME). "
        "Unset: stderr only.",
    )
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    producer: ProducerSettings = Field(default_factory=ProducerSettings)
    senders: Annotated[list[WorkerSettings], Field(min_length=1, max_length=1000)] = Field(
        default_factory=_default_senders,
        description="One entry per worker process of the scenario's worker step, each its own "
        "profile (the senders; classic key `sender`).",
    )
    monitor: MonitorSettings = Field(default_factory=MonitorSettings)
    recorder: RecorderSettings = Field(default_factory=RecorderSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    timers: TimersSettings = Field(default_factory=TimersSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    notifier: NotifierSettings = Field(default_factory=NotifierSettings)
    retail: RetailSettings = Field(default_factory=RetailSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("senders")
    @classmethod
    def _senders_fit_partitions(
        cls, senders: list[WorkerSettings], info: ValidationInfo
    ) -> list[WorkerSettings]:
        # A field rule (kafka comes first, so it is known): reported on `senders`, beside any
        # other field's error, not instead of them.
        kafka = info.data.get("kafka")
        if kafka is not None and len(senders) > kafka.partitions:
            raise ValueError(
                f"{len(senders)} senders need at least as many partitions; "
                f"kafka.partitions is {kafka.partitions}"
            )
        return senders

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # flags (init) > environment > the classic variables > ./.env > config file > defaults
        # (deep-merged).
        return (
            init_settings,
            env_settings,
            _AliasSource(settings_cls),
            dotenv_settings,
            _FileSource(settings_cls),
        )


_file_values: ContextVar[dict[str, Any] | None] = ContextVar("herald_config_file", default=None)


class _FileSource(PydanticBaseSettingsSource):
    """The config file read by :func:`load_settings` (classic keys already translated)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # pragma: no cover - __call__ does the work

    def __call__(self) -> dict[str, Any]:
        return _file_values.get() or {}


def env_aliases() -> dict[str, str]:
    """Environment variables of older tools that herald reads too (an explicit list, from the
    scenarios: ``STORE_HEIGHT`` ...): name -> dotted settings key. A ``HERALD_*`` variable
    for the same setting wins."""
    from herald.scenarios import base

    out: dict[str, str] = {}
    for scenario in base.scenarios().values():
        out.update(scenario.env_aliases)
    return out


class _AliasSource(PydanticBaseSettingsSource):
    """The classic environment variables, under the settings they stand for."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # pragma: no cover - __call__ does the work

    def __call__(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, key in env_aliases().items():
            if name in os.environ:
                *sections, leaf = key.split(".")
                target = out
                for section in sections:
                    target = target.setdefault(section, {})
                target[leaf] = os.environ[name]
        return out


def read_config_file(path: Path) -> dict[str, Any]:
    """Read a JSON config file and translate the classic layout's keys to herald's."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path}: not found") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"config file {path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path}: must hold a JSON object, not {type(raw).__name__}")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        new = _CLASSIC_KEYS.get(str(key), str(key))
        if new in out:
            classic = next(k for k, v in _CLASSIC_KEYS.items() if v == new)
            raise ConfigError(f"config file {path}: both {classic!r} and {new!r} are set; keep one")
        out[new] = value
    return out


def load_settings(
    config_file: Path | str | None = None,
    overrides: Mapping[str, Any] | None = None,
    flags: Mapping[str, str] | None = None,
) -> Settings:
    """Build the settings tree from every source, or raise :class:`ConfigError`.

    ``overrides`` are command-line flags as a nested dict (``{"producer": {"rate": 5}}``);
    ``flags`` says what the user typed to set each of them (``{"producer.rate": "--rate -3",
    "senders[*].mean_wait_time": "--mean-wait -1"}``), so that an error names that;
    ``config_file`` defaults to ``$HERALD_CONFIG``, else ``./config.json`` when it exists.
    """
    path = _config_path(config_file)
    unknown = _unknown_env_vars()
    token = _file_values.set(read_config_file(path) if path else {})
    try:
        settings = Settings(**(overrides or {}))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, path, unknown, flags)) from None
    finally:
        _file_values.reset(token)
    if unknown:
        raise ConfigError(format_validation_error(None, path, unknown))
    return settings


def _config_path(config_file: Path | str | None) -> Path | None:
    if config_file is not None:
        return Path(config_file)
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def env_vars() -> dict[str, tuple[str, ...]]:
    """Every environment variable herald reads, mapped to the settings path it sets."""
    out: dict[str, tuple[str, ...]] = {CONFIG_ENV: ("(config file path)",)}
    for name, field in Settings.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, Parameters):
            for sub in annotation.model_fields:
                out[f"{ENV_PREFIX}{name}_{sub}".upper()] = (name, sub)
        else:
            out[f"{ENV_PREFIX}{name}".upper()] = (name,)
    return out


def _unknown_env_vars() -> list[str]:
    known = env_vars()
    return sorted(k for k in os.environ if k.startswith(ENV_PREFIX) and k not in known)


def env_var_for(loc: Sequence[str | int]) -> str:
    """The environment variable that sets the field at ``loc`` (and its classic alias)."""
    parts = [str(p) for p in loc if not isinstance(p, int)]
    if parts and parts[0] == "senders":
        return "HERALD_SENDERS"
    name = ENV_PREFIX + "_".join(parts[:2]).upper()
    alias = [a for a, key in env_aliases().items() if key == ".".join(parts[:2])]
    return f"{name} or {alias[0]}" if alias else name


def format_validation_error(
    exc: ValidationError | None,
    path: Path | None,
    unknown_env: Sequence[str] = (),
    flags: Mapping[str, str] | None = None,
) -> str:
    """One line per bad input: key (or the flag that set it), value, rule, and where to fix
    it; a flag applied to every sender is reported once."""
    lines = [f"  {name}: unknown environment variable (no such setting)" for name in unknown_env]
    for err in exc.errors() if exc is not None else ():
        loc = list(err["loc"])
        key = _dotted(loc)
        value = err.get("input")
        shown = "(unset)" if err["type"] == "missing" else _show(value)
        if err["type"] == "extra_forbidden":
            rule = "unknown key (no such setting)"
        elif err["type"] == "missing":
            rule = "required"
        else:
            rule = err["msg"].removeprefix("Value error, ")
        flag = (flags or {}).get(key) or (flags or {}).get(_INDEX.sub("[*]", key))
        if flag is not None:
            line = f"  {flag}: {rule} [setting {_INDEX.sub('[*]', key)}]"
        else:
            where = f"config key {key}" + (f" in {path}" if path else "")
            line = f"  {key} = {shown}: {rule} [{where}, env {env_var_for(loc)}]"
        if line not in lines:
            lines.append(line)
    return f"invalid configuration ({len(lines)} error(s)):\n" + "\n".join(lines)


_INDEX = re.compile(r"\[\d+\]")


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "{...}"
    return json.dumps(value, default=str)


def _dotted(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(settings)"


def load_resolved(path: Path) -> Settings:
    """Settings written by :func:`resolved_json`, exactly: no other source is read."""
    data = read_config_file(path)
    token = _file_values.set({})
    try:
        # As init values they outrank the environment and ./.env.
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, path)) from None
    finally:
        _file_values.reset(token)


def resolved_json(settings: Settings) -> str:
    """The settings as a config file that reproduces them exactly (for child processes), but
    for the secrets: those travel in :func:`secret_environment`, never in a file."""
    return settings.model_dump_json(indent=2)


def secret_environment(settings: Settings) -> dict[str, str]:
    """The secrets a settings file leaves out, as the variables a child process reads them
    from: Kafka's passwords, the API token and the webhook signing secrets."""
    import json

    env = {}
    for name, secret in (
        ("HERALD_KAFKA_SASL_PASSWORD", settings.kafka.sasl_password),
        ("HERALD_KAFKA_SSL_KEY_PASSWORD", settings.kafka.ssl_key_password),
    ):
        if secret is not None:
            env[name] = secret.get_secret_value()
    if settings.web.api_token is not None:
        env["HERALD_WEB_API_TOKEN"] = settings.web.api_token.get_secret_value()
    if settings.timers.signing_secrets:
        secrets = [s.get_secret_value() for s in settings.timers.signing_secrets]
        env["HERALD_TIMERS_SIGNING_SECRETS"] = json.dumps(secrets)
    return env
