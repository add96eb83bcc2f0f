"""The AsyncAPI 3 document of herald's topics, generated from :mod:`herald.contracts`.

:func:`document` builds it (deterministic: fixed example values, so the committed
``docs/asyncapi.yaml`` can be compared with it); :func:`render` serialises it. The HTML docs
and the validator come from the official AsyncAPI CLI and HTML template (npm packages), which
:func:`install_tools` installs into a local folder the first time.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

import msgspec
import yaml  # type: ignore[import-untyped]  # no stubs among the dependencies

from herald import contracts
from herald.config import KafkaSettings
from herald.contracts import CONTROL, DLQ, RUNS, RunCompleted, RunFigures, ServiceEvent, Topic
from herald.errors import ConfigError, HeraldError
from herald.scenarios import base
from herald.services import registry

ASYNCAPI_VERSION: Final = "3.0.0"
KAFKA_BINDING_VERSION: Final = "0.5.0"
# The versions the committed HTML was made with; a new major is a deliberate change here.
NPM_PACKAGES: Final = ("@asyncapi/cli@6.2.0", "@asyncapi/html-template@3.5.6")
# package.json naming them and the package-lock.json that pins the ~1,400 packages below them
# (resolved from versions published before 2026-10-01, without registry addresses): an
# unpinned install takes each dependency's newest version, and one a registry lists before it
# serves its dependencies fails the install ("No matching version found").
NPM_PROJECT: Final = Path(__file__).parent / "data" / "asyncapi-cli"
NPM_FILES: Final = ("package.json", "package-lock.json")
TEMPLATE: Final = "@asyncapi/html-template"

Format = Literal["json", "yaml"]
_S = TypeVar("_S", bound=msgspec.Struct)

DEAD_LETTER: Final = "DeadLetter"
RUN_REQUEST: Final = "RunRequest"
CONTROL_EVENT: Final = "ControlEvent"

_OVERVIEW: Final = """\
herald generates, runs and measures message workloads over Kafka. Its services meet only on
these topics, so the topics are its API: this document is generated from the contracts in
the code (`herald.contracts` and each scenario's module under `herald.scenarios`, the one
definition the services serialise and validate with) and from the service registry, by
`poetry run invoke app.gen-asyncapi-spec`.

```
web / CLI -> herald.runs -> producer -> herald.<scenario>.<work> -> workers (consumer group)
                                                                      |  (transactions)
         monitor, recorder <- herald.<scenario>.results <-------------+
 every service, the recorder (run complete), the monitor (figures) -> herald.control
 records that cannot be processed -> herald.dlq (reason and source in headers)
```

* Every record is JSON (UTF-8), except dead letters, which keep the original bytes.
* Every message has a stable id chosen by its creator; the record key is that id, so
  replays are harmless when writes are idempotent on it.
* With `kafka.namespace` set (`HERALD_KAFKA_NAMESPACE`), every topic, consumer group and
  transactional id is prefixed with `{namespace}.` (tests and tenants sharing a cluster).
* A run request names its scenario (`scenario`; `sms` when absent) and carries that
  scenario's parameters.
* A scenario without workers (the retail store) has its facts published by the producer from
  a timeline, on a clock; the run's size is announced once produced (`run-produced` on
  `herald.control`).

### Writing a new consumer of results

Subscribe to a scenario's results topic (e.g. `herald.sms.results`) with your own
`group.id`, `isolation.level=read_committed` (results are written in Kafka transactions)
and `auto.offset.reset=earliest`. Each message has exactly one committed result; make your
writes idempotent on its message id (the key) and commit offsets after your writes are
durable. Decode with the result's schema below: unknown fields are rejected by herald's own
decoder, so a new field is a new contract version. Timestamps are RFC 3339, UTC.
"""

# Fixed example values: the committed document must not change from one run to the next.
_EXAMPLE_TIME: Final = datetime(2025, 1, 15, 9, 30, tzinfo=UTC)


def _checked(value: _S) -> _S:
    # Constructing a Struct does not check its constraints; a round trip does.
    return msgspec.json.decode(msgspec.json.encode(value), type=type(value))


def _plain(value: msgspec.Struct) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(msgspec.json.encode(value))
    return result


def _control_examples() -> list[tuple[str, str, object]]:
    ready = _checked(
        ServiceEvent(
            service="sender",
            instance="sender-2",
            host="worker-1",
            pid=4242,
            state="ready",
            at=_EXAMPLE_TIME,
            partitions=["herald.sms.outbound[4]", "herald.sms.outbound[5]"],
        )
    )
    done = _checked(
        RunCompleted(
            run_id="7f3a9c2e41b0",
            scenario="sms",
            expected=10_000,
            counts={"failed": 982, "sent": 9018},
            at=_EXAMPLE_TIME + timedelta(seconds=3),
        )
    )
    figures = _checked(
        RunFigures(
            run_id="7f3a9c2e41b0",
            complete=True,
            figures={"total": 10_000, "sent": 9018, "failed": 982, "duplicates_ignored": 0},
            at=_EXAMPLE_TIME + timedelta(seconds=3),
        )
    )
    return [
        ("ready", "A sender holds its first partitions", _plain(ready)),
        ("run-completed", "The recorder stored the run's last outcome", _plain(done)),
        ("run-figures", "The monitor saw the run's last result", _plain(figures)),
    ]


def example_records() -> dict[str, list[tuple[str, str, object]]]:
    """Valid example payloads of each JSON message: ``{message: [(name, summary, value)]}``."""
    out: dict[str, list[tuple[str, str, object]]] = {RUN_REQUEST: [], CONTROL_EVENT: []}
    for scenario in base.scenarios().values():
        for type_name, examples in scenario.examples().items():
            target = RUN_REQUEST if type_name == scenario.request_type.__name__ else type_name
            out.setdefault(target, []).extend(
                (ex.name, ex.summary, _plain(ex.value)) for ex in examples
            )
    out[CONTROL_EVENT] = _control_examples()
    from herald import timers

    out[timers.FireCommand.__name__] = [
        (name, summary, _plain(_checked(value))) for name, summary, value in timers.examples()
    ]
    return out


def _dead_letter_example() -> tuple[str, dict[str, str]]:
    """A record a worker could not decode, and the headers it dead-letters it with."""
    scenario = next(s for s in base.scenarios().values() if s.worker is not None)
    assert scenario.worker is not None
    work = scenario.worker.work
    assert work.payload is not None
    message = example_records()[work.payload.__name__][0][2]
    assert isinstance(message, dict)
    # Its first field left out. (A field that breaks a pattern would do too, but msgspec's
    # message for a pattern holds "$'", which the HTML generator's JavaScript would mangle.)
    first = msgspec.structs.fields(work.payload)[0].encode_name
    bad = json.dumps({k: v for k, v in message.items() if k != first}, separators=(",", ":"))
    try:
        msgspec.json.decode(bad, type=work.payload)
    except msgspec.ValidationError as exc:
        reason = f"{type(exc).__name__}: {exc}"[: contracts.DLQ_MAX_REASON]
    else:  # pragma: no cover - the example is invalid by construction
        raise AssertionError("the dead-letter example decoded")
    headers = {
        contracts.DLQ_REASON: reason,
        contracts.DLQ_TOPIC: work.name,
        contracts.DLQ_PARTITION: "3",
        contracts.DLQ_OFFSET: "1041",
        contracts.DLQ_SERVICE: f"{scenario.worker.service}-0",
    }
    return bad, headers


def _dead_letter_headers() -> dict[str, Any]:
    digits = {"type": "string", "pattern": "^[0-9]+$"}
    return {
        "type": "object",
        "description": "Kafka record headers; each value is UTF-8 text.",
        "required": list(contracts.DLQ_HEADERS),
        "properties": {
            contracts.DLQ_REASON: {
                "type": "string",
                "maxLength": contracts.DLQ_MAX_REASON,
                "description": "Why the record could not be processed (the decoder's error).",
            },
            contracts.DLQ_TOPIC: {
                "type": "string",
                "minLength": 1,
                "description": "The topic the record was read from.",
            },
            contracts.DLQ_PARTITION: {**digits, "description": "Its partition."},
            contracts.DLQ_OFFSET: {**digits, "description": "Its offset."},
            contracts.DLQ_SERVICE: {
                "type": "string",
                "pattern": registry.dead_letter_service_pattern(),
                "description": "The service that dead-lettered it.",
            },
            contracts.DLQ_SENDER: {
                "type": "string",
                "description": "A datagram's sender, `host:port` (the telemetry ingestor's "
                "dead letters; their topic is `udp:<port>`, their offset the datagram's "
                "number on that port).",
            },
        },
    }


def _key_schema(topic: Topic) -> dict[str, Any]:
    if topic is RUNS:
        schema = msgspec.json.schema(contracts.RunId)
        schema["description"] = "The run id (`run_id`)."
    elif topic is CONTROL:
        return {"type": "string", "description": "The service instance, or the run id."}
    elif topic is DLQ:
        return {"description": "The original record's key, unchanged (may be absent)."}
    elif topic.key == "run id":
        schema = msgspec.json.schema(contracts.RunId)
        schema["description"] = "The run id (`run_id`): a run's records stay in order."
    elif topic.key != "message id":
        return {"type": "string", "description": f"The {topic.key}: its records stay in order."}
    else:
        schema = msgspec.json.schema(contracts.MessageId)
        schema["description"] = "The message id (`id` of a message, `message_id` of a result)."
    return schema


def _message_name(topic: Topic) -> str:
    if topic is RUNS:
        return RUN_REQUEST
    if topic is CONTROL:
        return CONTROL_EVENT
    return topic.payload.__name__ if topic.payload is not None else DEAD_LETTER


def _channel_id(topic: Topic) -> str:
    """``herald.runs`` -> ``runs``; ``herald.sms.outbound`` -> ``smsOutbound``."""
    first, *rest = topic.name.split(".")[1:]
    return first + "".join(p[:1].upper() + p[1:] for p in rest)


_SUMMARIES: Final = {
    RUN_REQUEST: "A request to run a workload: its scenario and that scenario's parameters.",
    CONTROL_EVENT: "A service's lifecycle, a run's completion, or a monitor's figures.",
}


def _message(topic: Topic, examples: dict[str, list[tuple[str, str, object]]]) -> dict[str, Any]:
    name = _message_name(topic)
    bindings = {"kafka": {"key": _key_schema(topic), "bindingVersion": KAFKA_BINDING_VERSION}}
    if name == DEAD_LETTER:
        value, headers = _dead_letter_example()
        return {
            "name": name,
            "title": "Dead letter",
            "summary": topic.description,
            "contentType": "application/octet-stream",
            "headers": _dead_letter_headers(),
            "payload": {
                "description": "The original record's value, byte for byte: possibly not JSON, "
                f"possibly not UTF-8; cut to its first {contracts.DLQ_MAX_VALUE:,} bytes when "
                "longer."
            },
            "bindings": bindings,
            "examples": [
                {
                    "name": "missing-field",
                    "summary": "A message a worker could not decode",
                    "headers": headers,
                    "payload": value,
                }
            ],
        }
    assert topic.payload is not None or name == CONTROL_EVENT
    summary = _SUMMARIES.get(name) or (topic.payload.__doc__ or "").strip().splitlines()[0]
    return {
        "name": name,
        "title": name,
        "summary": summary,
        "contentType": "application/json",
        "payload": {"$ref": f"#/components/schemas/{name}"},
        "bindings": bindings,
        "examples": [
            {"name": ex_name, "summary": ex_summary, "payload": value}
            for ex_name, ex_summary, value in examples[name]
        ],
    }


def _servers() -> dict[str, Any]:
    return {
        "embedded": {
            "host": "127.0.0.1:{port}",
            "protocol": "kafka",
            "title": "Embedded broker",
            "description": "The Tansu broker herald starts itself when `kafka.bootstrap` is "
            "unset (laptops, CI, tests): memory storage, one broker, a free local port.",
            "variables": {"port": {"default": "9092", "description": "The port chosen at start."}},
        },
        "compose": {
            "host": "kafka:9092",
            "protocol": "kafka",
            "title": "docker compose",
            "description": "The single Apache Kafka (KRaft) broker of `docker compose`, as "
            "the services in the compose network reach it.",
        },
        "cluster": {
            "host": "{broker}:9093",
            "protocol": "kafka-secure",
            "title": "Kafka cluster",
            "description": "Any Kafka cluster of 3+ brokers (replication factor 3) over TLS "
            "with SASL/SCRAM-SHA-512. Set `HERALD_KAFKA_BOOTSTRAP` to the brokers and "
            "`HERALD_KAFKA_CLIENT_CONFIG` to the librdkafka security properties.",
            "variables": {
                "broker": {
                    "enum": ["kafka-1", "kafka-2", "kafka-3"],
                    "default": "kafka-1",
                    "description": "One of the cluster's brokers.",
                }
            },
            "security": [
                {"$ref": "#/components/securitySchemes/saslScram"},
                {"$ref": "#/components/securitySchemes/mutualTls"},
            ],
        },
    }


def _security_schemes() -> dict[str, Any]:
    return {
        "saslScram": {
            "type": "scramSha512",
            "description": "SASL_SSL with SCRAM-SHA-512: `HERALD_KAFKA_CLIENT_CONFIG="
            '{"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512", '
            '"sasl.username": "…", "sasl.password": "…", "ssl.ca.location": "…"}`.',
        },
        "mutualTls": {
            "type": "X509",
            "description": "TLS client certificates: `HERALD_KAFKA_CLIENT_CONFIG="
            '{"security.protocol": "SSL", "ssl.ca.location": "…", '
            '"ssl.certificate.location": "…", "ssl.key.location": "…"}`.',
        },
    }


def _schemas() -> dict[str, Any]:
    """Every payload's JSON Schema; the run request and the control event are unions."""
    requests = tuple(s.request_type for s in base.scenarios().values())
    payloads = tuple(t.payload for t in kafka_topics() if t.payload is not None and t is not RUNS)
    _, schemas = msgspec.json.schema_components(
        (*requests, *payloads, *contracts.CONTROL_EVENTS),
        ref_template="#/components/schemas/{name}",
    )
    ref = "#/components/schemas/{}"
    schemas[RUN_REQUEST] = {
        "description": "A run request: one of the scenarios' (by `scenario`; `sms` when absent).",
        "oneOf": [{"$ref": ref.format(r.__name__)} for r in requests],
    }
    schemas[CONTROL_EVENT] = {
        "description": "One control event, by `type`.",
        "oneOf": [{"$ref": ref.format(e.__name__)} for e in contracts.CONTROL_EVENTS],
        "discriminator": "type",  # AsyncAPI schemas name the property (not OpenAPI's object)
    }
    return dict(sorted(schemas.items()))


def kafka_topics() -> tuple[Topic, ...]:
    """Every topic the document describes: the platform's, the timers' and every scenario's."""
    from herald import timers

    return (RUNS, *base.all_topics(), *timers.TOPICS, CONTROL, DLQ)


def document() -> dict[str, Any]:
    """The AsyncAPI 3 document: servers, channels, operations, messages and schemas."""
    kafka_fields = KafkaSettings.model_fields
    partitions = kafka_fields["partitions"].default
    replicas = kafka_fields["replication_factor"].default
    examples = example_records()
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for topic in kafka_topics():
        name = _message_name(topic)
        messages[name] = _message(topic, examples)
        count = topic.partitions or partitions
        source = "" if topic.partitions else f"`kafka.partitions` ({partitions} by default)"
        channels[_channel_id(topic)] = {
            "address": topic.name,
            "title": topic.name,
            "description": f"{topic.description} Key: {topic.key}. Partitions: "
            f"{source or count}; replication factor: "
            f"`kafka.replication_factor` ({replicas} by default, 3 on a cluster).",
            "tags": [{"name": topic.tag}],
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
            "bindings": {
                "kafka": {
                    "topic": topic.name,
                    "partitions": count,
                    "replicas": replicas,
                    "bindingVersion": KAFKA_BINDING_VERSION,
                }
            },
        }
    operations: dict[str, Any] = {}
    for service, op in registry.operations():
        channel = _channel_id(op.topic)
        who = service.name if service is not None else "every service"
        operation: dict[str, Any] = {
            "action": op.action,
            "channel": {"$ref": f"#/channels/{channel}"},
            "title": f"{who}: {op.action} {op.topic.name}",
            "summary": op.summary,
        }
        if op.description:
            operation["description"] = op.description
        operation["messages"] = [
            {"$ref": f"#/channels/{channel}/messages/{_message_name(op.topic)}"}
        ]
        if op.group_role is not None:
            group = contracts.group_id("", op.group_role)
            operation["bindings"] = {
                "kafka": {
                    "groupId": {
                        "type": "string",
                        "enum": [group],
                        "description": f"`{{namespace}}.{group}` under a namespace.",
                    },
                    "bindingVersion": KAFKA_BINDING_VERSION,
                }
            }
        operations[op.id] = operation
    tags = list(dict.fromkeys(t.tag for t in kafka_topics()))
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:herald:topics",
        "info": {
            "title": "herald topics",
            "version": version("herald"),
            "description": _OVERVIEW,
            "tags": [{"name": tag} for tag in tags],
        },
        "defaultContentType": "application/json",
        "servers": _servers(),
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": _schemas(),
            "messages": messages,
            "securitySchemes": _security_schemes(),
        },
    }


class _Dumper(yaml.SafeDumper):  # type: ignore[misc]
    """Block style for text of several lines: the overview reads as it was written."""


def _str(dumper: Any, value: str) -> Any:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render(fmt: Format = "yaml") -> str:
    """The document as ``json`` or ``yaml`` text."""
    doc = document()
    if fmt == "json":
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    text: str = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return text


# -- the AsyncAPI CLI -----------------------------------------------------------------------


def tools_dir(root: Path) -> Path:
    """Where the AsyncAPI CLI is installed for the project at ``root`` (gitignored)."""
    return root / ".herald" / "tools" / "asyncapi"


def _lock_digest() -> str:
    digest = hashlib.sha256()
    for name in NPM_FILES:
        digest.update((NPM_PROJECT / name).read_bytes())
    return digest.hexdigest()


def _marker() -> dict[str, Any]:
    return {"packages": list(NPM_PACKAGES), "lock": _lock_digest()}


def _installed(directory: Path) -> bool:
    marker = directory / "installed.json"
    return (
        marker.is_file()
        and json.loads(marker.read_text()) == _marker()
        and (directory / "node_modules" / ".bin" / "asyncapi").is_file()
    )


def install_tools(directory: Path, *, say: Callable[[str], None] = print) -> Path:
    """Install the AsyncAPI CLI and HTML template into ``directory`` unless already there.

    ``npm ci`` from the committed lock file, so every install gets the same packages.
    Idempotent and safe to call from several processes at once (a file lock); a changed lock
    file installs again. Returns the ``asyncapi`` executable. Needs node and npm on the PATH.
    """
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    executable = directory / "node_modules" / ".bin" / "asyncapi"
    with (directory / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed(directory):
            return executable
        npm = shutil.which("npm")
        if npm is None:
            raise HeraldError("npm not found: install Node.js 20+ to use the AsyncAPI CLI")
        say(f"installing {' '.join(NPM_PACKAGES)} into {directory} (once; about a minute)")
        for name in NPM_FILES:
            shutil.copyfile(NPM_PROJECT / name, directory / name)
        # The CLI reports usage over the network unless its analytics file says no.
        (directory / "analytics.json").write_text(
            '{"analyticsEnabled": "false", "infoMessageShown": "true", "userID": "herald"}\n'
        )
        env = {**os.environ, "PUPPETEER_SKIP_DOWNLOAD": "1"}  # the template needs no browser
        proc = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=directory,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0 or not executable.is_file():
            raise HeraldError(f"npm install failed ({proc.returncode}):\n{proc.stderr.strip()}")
        (directory / "installed.json").write_text(json.dumps(_marker()) + "\n")
        say(f"installed the AsyncAPI CLI: {executable}")
    return executable


def run_cli(
    tools: Path, *args: str, say: Callable[[str], None] = print
) -> subprocess.CompletedProcess[str]:
    """``asyncapi *args`` with the CLI in ``tools`` (installed first if needed)."""
    tools = tools.resolve()
    executable = install_tools(tools, say=say)
    env = {
        **os.environ,
        "ASYNCAPI_METRICS_CONFIG_PATH": str(tools / "analytics.json"),
        "SUPPRESS_NO_CONFIG_WARNING": "1",
        "PUPPETEER_SKIP_DOWNLOAD": "1",
    }
    return subprocess.run(
        [str(executable), *args], cwd=tools, env=env, capture_output=True, text=True, check=False
    )


def validate(spec: Path, tools: Path) -> subprocess.CompletedProcess[str]:
    """``asyncapi validate``: fails on errors and warnings alike."""
    return run_cli(tools, "validate", str(spec.resolve()), "--fail-severity", "warn")


def generate_html(out: Path, tools: Path, *, say: Callable[[str], None] = print) -> Path:
    """Render the HTML docs of the current document into ``out``; return its index page."""
    template = tools / "node_modules" / TEMPLATE
    with tempfile.TemporaryDirectory(prefix="herald-asyncapi-") as tmp:
        spec = Path(tmp) / "asyncapi.yaml"
        spec.write_text(render("yaml"))
        staging = Path(tmp) / "html"
        install_tools(tools, say=say)
        say(f"rendering the HTML docs with {TEMPLATE}")
        # The template by its path: given its npm name, the generator tries its own install.
        proc = run_cli(
            tools,
            "generate",
            "fromTemplate",
            str(spec),
            str(template),
            "-o",
            str(staging),
            "--force-write",
            "--no-interactive",
            say=say,
        )
        index = staging / "index.html"
        if proc.returncode != 0 or not index.is_file():
            raise HeraldError(
                f"asyncapi generate failed ({proc.returncode}):\n"
                f"{(proc.stderr or proc.stdout).strip()}"
            )
        # Replace the old pages only once the new ones exist.
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(staging, out)
    return out / "index.html"


def write_docs(root: Path, fmt: str, *, say: Callable[[str], None] = print) -> Path:
    """Write ``docs/asyncapi.{json,yaml}`` (``fmt`` json, yaml) or the HTML docs (html)."""
    docs = root / "docs"
    if fmt == "html":
        path = generate_html(docs / "asyncapi", tools_dir(root), say=say)
    elif fmt in ("json", "yaml"):
        path = docs / f"asyncapi.{fmt}"
        path.write_text(render("json" if fmt == "json" else "yaml"))
    else:
        raise ConfigError(f"unknown format {fmt!r}: one of json, yaml, html")
    say(f"wrote {path.relative_to(root)}")
    return path
