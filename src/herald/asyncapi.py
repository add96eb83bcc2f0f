"""The AsyncAPI 3 document of herald's topics, generated from :mod:`herald.contracts`.

:func:`document` builds it (deterministic: fixed example values, so the committed
``docs/asyncapi.yaml`` can be compared with it); :func:`render` serialises it. The HTML docs
and the validator come from the official AsyncAPI CLI and HTML template (npm packages), which
:func:`install_tools` installs into a local folder the first time.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

import msgspec
import yaml  # type: ignore[import-untyped]  # no stubs among the dependencies

from herald import contracts
from herald.config import KafkaSettings
from herald.contracts import DLQ, OUTBOUND, RESULTS, RUNS, RunRequest, SmsMessage, SmsResult, Topic
from herald.errors import ConfigError, HeraldError

ASYNCAPI_VERSION: Final = "3.0.0"
KAFKA_BINDING_VERSION: Final = "0.5.0"
# The versions the committed HTML was made with; a new major is a deliberate change here.
NPM_PACKAGES: Final = ("@asyncapi/cli@6.2.0", "@asyncapi/html-template@3.5.6")
TEMPLATE: Final = "@asyncapi/html-template"

Format = Literal["json", "yaml"]
_S = TypeVar("_S", bound=msgspec.Struct)

_CHANNEL_IDS: Final = {RUNS.name: "runs", OUTBOUND.name: "outbound", RESULTS.name: "results"}
_CHANNEL_IDS[DLQ.name] = "dlq"
_TAGS: Final = {
    RUNS.name: "control",
    OUTBOUND.name: "work",
    RESULTS.name: "facts",
    DLQ.name: "dead letters",
}
DEAD_LETTER: Final = "DeadLetter"


@dataclass(frozen=True)
class _Operation:
    id: str
    action: Literal["send", "receive"]
    topic: Topic
    who: str
    summary: str
    description: str
    group_role: str | None = None


OPERATIONS: Final = (
    _Operation(
        "submitRun",
        "send",
        RUNS,
        "web API, CLI",
        "The web API, `herald submit` and `sim.run` ask for a run.",
        "One record per run, keyed by its `run_id`, acknowledged by the broker before the "
        "caller reports the run id.",
    ),
    _Operation(
        "produceRun",
        "receive",
        RUNS,
        "producer",
        "The producer turns each run request into `messages` SMS messages.",
        "Its offset is committed only after every message of the run is acknowledged, so a "
        "producer stopped mid-run leaves the request to the next one, which produces the same "
        "ids and content again (the seed is in the request). An invalid request goes to the "
        "dead-letter topic.",
        "producers",
    ),
    _Operation(
        "recordRun",
        "receive",
        RUNS,
        "recorder",
        "The recorder keeps each run in Postgres (`runs`).",
        "",
        "recorders",
    ),
    _Operation(
        "monitorRuns",
        "receive",
        RUNS,
        "monitor",
        "The monitor learns each run's expected count.",
        "It `assign()`s every partition and reads from the beginning: no consumer group.",
    ),
    _Operation(
        "sendSms",
        "send",
        OUTBOUND,
        "producer",
        "The producer publishes a run's messages.",
        "Idempotent producer, `acks=all`, keyed by message id: messages spread over every "
        "partition.",
    ),
    _Operation(
        "deliverSms",
        "receive",
        OUTBOUND,
        "senders",
        "Senders deliver the messages, as one consumer group.",
        "`read_committed`, cooperative-sticky assignment. Each message is consumed, its "
        "delivery simulated, and its result produced in one Kafka transaction together with "
        "the consumed offset: exactly one result per message, even when a sender dies.",
        "senders",
    ),
    _Operation(
        "publishResult",
        "send",
        RESULTS,
        "senders",
        "Each sender publishes one result per message, in Kafka transactions.",
        "One transactional producer per consumed partition, id `herald-sender-p{partition}` "
        "(`{namespace}.herald-sender-p{partition}` under a namespace): whoever takes a "
        "partition over fences its previous owner. Results of a partition are released in "
        "offset order. Read them with `isolation.level=read_committed`, and count a message "
        "once by `run_id` and `seq`: a broker that shows aborted transactions' records (the "
        "embedded one does) may deliver a result twice.",
    ),
    _Operation(
        "recordResult",
        "receive",
        RESULTS,
        "recorder",
        "The recorder writes each result to Postgres (`outcomes`), idempotently.",
        "Upsert on `message_id`; offsets are committed after the database commit.",
        "recorders",
    ),
    _Operation(
        "monitorResults",
        "receive",
        RESULTS,
        "monitor",
        "The monitor aggregates results into the live view.",
        "It `assign()`s every partition and reads from the beginning: no consumer group. "
        "It counts each `(run_id, seq)` once.",
    ),
    _Operation(
        "deadLetter",
        "send",
        DLQ,
        "producer, senders, recorder",
        "Records that cannot be processed go to the dead-letter topic, unchanged.",
        "The value and key are the original record's; the headers say why and where from. "
        "A value over 900,000 bytes is cut to its first 900,000 (the reason says so), so that "
        "the dead letter itself stays under the 1 MB record limit.",
    ),
    _Operation(
        "monitorDeadLetters",
        "receive",
        DLQ,
        "monitor",
        "The monitor counts dead letters.",
        "It `assign()`s every partition and reads from the beginning: no consumer group.",
    ),
)

_OVERVIEW: Final = """\
herald simulates SMS delivery over Kafka. Its services meet only on these topics, so the
topics are its API: this document is generated from `herald.contracts` (the one definition
the services serialise and validate with) by `poetry run invoke app.gen-asyncapi-spec`.

```
web / CLI -> herald.runs -> producer -> herald.sms.outbound -> senders (consumer group)
                                                                  |  (transactions)
         monitor, recorder <- herald.sms.results <----------------+
 records that cannot be processed -> herald.dlq (reason and source in headers)
```

* Every record is JSON (UTF-8), except dead letters, which keep the original bytes.
* Every message has a stable id chosen by its creator; the record key is that id, so
  replays are harmless when writes are idempotent on it.
* With `kafka.namespace` set (`HERALD_KAFKA_NAMESPACE`), every topic, consumer group and
  transactional id is prefixed with `{namespace}.` (tests and tenants sharing a cluster).

### Writing a new consumer of results

Subscribe to `herald.sms.results` with your own `group.id`, `isolation.level=read_committed`
(results are written in Kafka transactions) and `auto.offset.reset=earliest`. Each message
has exactly one committed result; make your writes idempotent on `message_id` (the key) and
commit offsets after your writes are durable. Decode with the `SmsResult` schema below:
unknown fields are rejected by herald's own decoder, so a new field is a new contract
version. Timestamps are RFC 3339, UTC.
"""

# Fixed example values: the committed document must not change from one run to the next.
_EXAMPLE_RUN_ID: Final = "7f3a9c2e41b0"
_EXAMPLE_SEED: Final = 42
_EXAMPLE_TIME: Final = datetime(2025, 1, 15, 9, 30, tzinfo=UTC)


def _checked(value: _S) -> _S:
    # Constructing a Struct does not check its constraints; a round trip does.
    return msgspec.json.decode(msgspec.json.encode(value), type=type(value))


def _plain(value: msgspec.Struct) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(msgspec.json.encode(value))
    return result


def example_records() -> dict[str, list[tuple[str, str, object]]]:
    """Valid example payloads of each JSON message: ``{message: [(name, summary, value)]}``."""
    from herald.scenarios.sms import SmsGenerator
    from herald.services.sender import FAILURE_REASONS

    request = _checked(
        RunRequest(
            run_id=_EXAMPLE_RUN_ID,
            messages=10_000,
            seed=_EXAMPLE_SEED,
            requested_at=_EXAMPLE_TIME,
        )
    )
    paced = msgspec.structs.replace(request, run_id="5b61d0e8a9c3", rate=500.0)
    generated = list(SmsGenerator(_EXAMPLE_RUN_ID, _EXAMPLE_SEED).messages(2))
    sms = [
        _checked(msgspec.structs.replace(m, created_at=_EXAMPLE_TIME + timedelta(seconds=0.5)))
        for m in generated
    ]
    received = sms[0].created_at + timedelta(milliseconds=200)
    sent = _checked(
        SmsResult(
            message_id=sms[0].id,
            run_id=sms[0].run_id,
            seq=sms[0].seq,
            sender_id=2,
            status="sent",
            latency_ms=84.25,
            attempts=1,
            created_at=sms[0].created_at,
            received_at=received,
            completed_at=received + timedelta(milliseconds=84.25),
        )
    )
    failed = _checked(
        msgspec.structs.replace(
            sent,
            message_id=sms[1].id,
            seq=sms[1].seq,
            status="failed",
            latency_ms=312.5,
            attempts=3,
            completed_at=received + timedelta(milliseconds=312.5),
            failure_reason=FAILURE_REASONS[0],
        )
    )
    return {
        "RunRequest": [
            ("unpaced", "10,000 messages as fast as the broker takes them", _plain(request)),
            ("paced", "The same, at most 500 messages/s", _plain(paced)),
        ],
        "SmsMessage": [("message", "Message 0 of a run", _plain(sms[0]))],
        "SmsResult": [
            ("sent", "Delivered at the first attempt", _plain(sent)),
            ("failed", "Failed after three attempts", _plain(failed)),
        ],
    }


def _dead_letter_example() -> tuple[str, dict[str, str]]:
    """A record a sender could not decode, and the headers it dead-letters it with."""
    from herald.services.dlq import MAX_REASON

    sms = example_records()["SmsMessage"][0][2]
    assert isinstance(sms, dict)
    # An empty text. (Not a bad phone: msgspec's message for a pattern holds "$'", which the
    # HTML generator's JavaScript string replace would mangle.)
    bad = json.dumps({**sms, "text": ""}, separators=(",", ":"))
    try:
        msgspec.json.decode(bad, type=SmsMessage)
    except msgspec.ValidationError as exc:
        reason = f"{type(exc).__name__}: {exc}"[:MAX_REASON]
    else:  # pragma: no cover - the example is invalid by construction
        raise AssertionError("the dead-letter example decoded")
    headers = {
        contracts.DLQ_REASON: reason,
        contracts.DLQ_TOPIC: OUTBOUND.name,
        contracts.DLQ_PARTITION: "3",
        contracts.DLQ_OFFSET: "1041",
        contracts.DLQ_SERVICE: "sender-0",
    }
    return bad, headers


def _dead_letter_headers() -> dict[str, Any]:
    from herald.services.dlq import MAX_REASON

    digits = {"type": "string", "pattern": "^[0-9]+$"}
    return {
        "type": "object",
        "description": "Kafka record headers; each value is UTF-8 text.",
        "required": [
            contracts.DLQ_REASON,
            contracts.DLQ_TOPIC,
            contracts.DLQ_PARTITION,
            contracts.DLQ_OFFSET,
            contracts.DLQ_SERVICE,
        ],
        "properties": {
            contracts.DLQ_REASON: {
                "type": "string",
                "maxLength": MAX_REASON,
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
                "pattern": "^(producer|recorder|sender-[0-9]+)$",
                "description": "The service that dead-lettered it.",
            },
        },
    }


def _key_schema(topic: Topic) -> dict[str, Any]:
    if topic is RUNS:
        schema = msgspec.json.schema(contracts.RunId)
        schema["description"] = "The run id (`run_id`)."
    elif topic is DLQ:
        return {"description": "The original record's key, unchanged (may be absent)."}
    else:
        schema = msgspec.json.schema(contracts.MessageId)
        schema["description"] = "The message id (`id` of the message, `message_id` of a result)."
    return schema


def _message_name(topic: Topic) -> str:
    return topic.payload.__name__ if topic.payload is not None else DEAD_LETTER


def _message(topic: Topic, examples: dict[str, list[tuple[str, str, object]]]) -> dict[str, Any]:
    name = _message_name(topic)
    bindings = {"kafka": {"key": _key_schema(topic), "bindingVersion": KAFKA_BINDING_VERSION}}
    if topic.payload is None:
        value, headers = _dead_letter_example()
        return {
            "name": name,
            "title": "Dead letter",
            "summary": topic.description,
            "contentType": "application/octet-stream",
            "headers": _dead_letter_headers(),
            "payload": {
                "description": "The original record's value, byte for byte: possibly not JSON, "
                "possibly not UTF-8; cut to its first 900,000 bytes when longer."
            },
            "bindings": bindings,
            "examples": [
                {
                    "name": "empty-text",
                    "summary": "A message a sender could not decode",
                    "headers": headers,
                    "payload": value,
                }
            ],
        }
    return {
        "name": name,
        "title": name,
        "summary": (topic.payload.__doc__ or "").strip().splitlines()[0],
        "contentType": "application/json",
        "payload": {"$ref": f"#/components/schemas/{name}"},
        "bindings": bindings,
        "examples": [
            {"name": ex_name, "summary": summary, "payload": value}
            for ex_name, summary, value in examples[name]
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


def document() -> dict[str, Any]:
    """The AsyncAPI 3 document: servers, channels, operations, messages and schemas."""
    kafka_fields = KafkaSettings.model_fields
    partitions = kafka_fields["partitions"].default
    replicas = kafka_fields["replication_factor"].default
    structs = tuple(t.payload for t in contracts.ALL_TOPICS if t.payload is not None)
    _, schemas = msgspec.json.schema_components(structs, ref_template="#/components/schemas/{name}")
    examples = example_records()
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for topic in contracts.ALL_TOPICS:
        name = _message_name(topic)
        messages[name] = _message(topic, examples)
        channels[_CHANNEL_IDS[topic.name]] = {
            "address": topic.name,
            "title": topic.name,
            "description": f"{topic.description} Key: {topic.key}. Partitions: "
            f"`kafka.partitions` ({partitions} by default); replication factor: "
            f"`kafka.replication_factor` ({replicas} by default, 3 on a cluster).",
            "tags": [{"name": _TAGS[topic.name]}],
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
            "bindings": {
                "kafka": {
                    "topic": topic.name,
                    "partitions": partitions,
                    "replicas": replicas,
                    "bindingVersion": KAFKA_BINDING_VERSION,
                }
            },
        }
    operations: dict[str, Any] = {}
    for op in OPERATIONS:
        channel = _CHANNEL_IDS[op.topic.name]
        operation: dict[str, Any] = {
            "action": op.action,
            "channel": {"$ref": f"#/channels/{channel}"},
            "title": f"{op.who}: {op.action} {op.topic.name}",
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
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:herald:topics",
        "info": {
            "title": "herald topics",
            "version": version("herald"),
            "description": _OVERVIEW,
            "tags": [{"name": tag} for tag in _TAGS.values()],
        },
        "defaultContentType": "application/json",
        "servers": _servers(),
        "channels": channels,
        "operations": operations,
        "components": {
            "schemas": schemas,
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


def _installed(directory: Path) -> bool:
    marker = directory / "installed.json"
    return (
        marker.is_file()
        and json.loads(marker.read_text()) == list(NPM_PACKAGES)
        and (directory / "node_modules" / ".bin" / "asyncapi").is_file()
    )


def install_tools(directory: Path, *, say: Callable[[str], None] = print) -> Path:
    """Install the AsyncAPI CLI and HTML template into ``directory`` unless already there.

    Idempotent and safe to call from several processes at once (a file lock). Returns the
    ``asyncapi`` executable. Needs node and npm on the PATH.
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
        (directory / "package.json").write_text('{"private": true}\n')
        # The CLI reports usage over the network unless its analytics file says no.
        (directory / "analytics.json").write_text(
            '{"analyticsEnabled": "false", "infoMessageShown": "true", "userID": "herald"}\n'
        )
        env = {**os.environ, "PUPPETEER_SKIP_DOWNLOAD": "1"}  # the template needs no browser
        proc = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", *NPM_PACKAGES],
            cwd=directory,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0 or not executable.is_file():
            raise HeraldError(f"npm install failed ({proc.returncode}):\n{proc.stderr.strip()}")
        (directory / "installed.json").write_text(json.dumps(list(NPM_PACKAGES)) + "\n")
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
