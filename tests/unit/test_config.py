from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from herald.config import Settings, env_vars, load_settings, read_config_file
from herald.errors import EXIT_CONFIG, ConfigError

CLASSIC = {
    "producer": {"num_messages": 1234},
    "progress_monitor": {"kind": "file", "output_location": "stderr", "refresh_secs": 2.5},
    "sender": [
        {"mean_wait_time": 0.5, "failure_rate": 0.1},
        {"mean_wait_time": 1.5, "failure_rate": 0.3},
    ],
}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("HERALD_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no ./config.json unless a test writes one


def write(tmp_path: Path, data: object, name: str = "config.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def refused(*args: Any, **kwargs: Any) -> list[str]:
    """The lines of the ConfigError that ``load_settings(*args, **kwargs)`` raises, which exits
    with code 2."""
    with pytest.raises(ConfigError) as info:
        load_settings(*args, **kwargs)
    assert info.value.exit_code == EXIT_CONFIG == 2
    return str(info.value).splitlines()


def test_defaults_are_valid_and_have_four_different_senders() -> None:
    s = load_settings()
    assert s.producer.num_messages == 10_000
    assert len(s.senders) == 4
    assert len({(x.mean_wait_time, x.failure_rate) for x in s.senders}) == 4
    assert s.kafka.bootstrap is None and s.database.url is None
    assert s.monitor.kind == "file" and s.monitor.output_location == "stdout"


def test_classic_layout_is_read(tmp_path: Path) -> None:
    s = load_settings(write(tmp_path, CLASSIC))
    assert s.producer.num_messages == 1234
    assert s.monitor.output_location == "stderr"
    assert s.monitor.refresh_secs == 2.5
    assert [(x.mean_wait_time, x.failure_rate) for x in s.senders] == [(0.5, 0.1), (1.5, 0.3)]
    assert s.senders[0].latency_distribution == "exponential"


def test_config_json_in_the_working_directory_is_found(tmp_path: Path) -> None:
    write(tmp_path, {"producer": {"num_messages": 77}})
    assert load_settings().producer.num_messages == 77


def test_herald_config_variable_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, {"producer": {"num_messages": 55}}, "other.json")
    monkeypatch.setenv("HERALD_CONFIG", str(path))
    assert load_settings().producer.num_messages == 55


def test_sources_layer_file_then_env_then_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path, {"producer": {"num_messages": 10, "rate": 5.0}, "kafka": {"partitions": 6}}
    )
    monkeypatch.setenv("HERALD_PRODUCER_NUM_MESSAGES", "20")
    monkeypatch.setenv("HERALD_KAFKA_BOOTSTRAP", "k1:9092")
    s = load_settings(path)
    assert (s.producer.num_messages, s.producer.rate, s.kafka.partitions) == (20, 5.0, 6)
    assert s.kafka.bootstrap == "k1:9092"
    s = load_settings(path, {"producer": {"num_messages": 30}})
    # A flag wins, and leaves the section's other values (file, env) in place.
    assert (s.producer.num_messages, s.producer.rate, s.kafka.bootstrap) == (30, 5.0, "k1:9092")


def test_senders_from_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_SENDERS", '[{"mean_wait_time": 0.2, "failure_rate": 0.5}]')
    s = load_settings()
    assert len(s.senders) == 1 and s.senders[0].failure_rate == 0.5


def test_every_bad_field_is_reported_on_its_own_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = {
        "producer": {"num_messages": 0},
        "sender": [{"mean_wait_time": -1, "failure_rate": 1.5}, {"latency_distribution": "zipf"}],
        "progress_monitor": {"refresh_secs": 0, "colour": "red"},
    }
    path = write(tmp_path, bad)
    monkeypatch.setenv("HERALD_KAFKA_PARTITIONS", "many")
    monkeypatch.setenv("HERALD_NO_SUCH_THING", "1")
    lines = refused(path)
    assert lines[0] == "invalid configuration (8 error(s)):"
    body = "\n".join(lines[1:])
    assert "HERALD_NO_SUCH_THING: unknown environment variable (no such setting)" in body
    assert (
        f"producer.num_messages = 0: Input should be greater than or equal to 1 "
        f"[config key producer.num_messages in {path}, env HERALD_PRODUCER_NUM_MESSAGES]" in body
    )
    assert "senders[0].mean_wait_time = -1: Input should be greater than or equal to 0" in body
    assert "senders[0].failure_rate = 1.5: Input should be less than or equal to 1" in body
    assert "env HERALD_SENDERS]" in body
    assert "senders[1].latency_distribution = \"zipf\": Input should be 'exponential'" in body
    assert "monitor.refresh_secs = 0: Input should be greater than 0" in body
    assert 'monitor.colour = "red": unknown key (no such setting)' in body
    assert 'kafka.partitions = "many": Input should be a valid integer' in body
    assert len(lines) == 9


def test_zero_senders_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"senders = \[\]: List should have at least 1 item"):
        load_settings(write(tmp_path, {"sender": []}))


def test_more_senders_than_partitions_is_an_error(tmp_path: Path) -> None:
    cfg = {"kafka": {"partitions": 2}, "sender": [{}, {}, {}]}
    with pytest.raises(ConfigError, match="3 senders need at least as many partitions"):
        load_settings(write(tmp_path, cfg))


def test_database_url_must_be_postgres() -> None:
    with pytest.raises(ConfigError, match="must be a postgresql:// or postgresql"):
        load_settings(overrides={"database": {"url": "mysql://x"}})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON (line 1, column 2"),
        ("[1, 2]", "must hold a JSON object, not list"),
        ('{"sender": [], "senders": []}', "both 'sender' and 'senders' are set"),
    ],
)
def test_unreadable_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "c.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        read_config_file(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.json")


def test_env_vars_cover_every_leaf_setting() -> None:
    names = env_vars()
    assert names["HERALD_KAFKA_BOOTSTRAP"] == ("kafka", "bootstrap")
    assert names["HERALD_DATABASE_URL"] == ("database", "url")
    assert names["HERALD_MONITOR_REFRESH_SECS"] == ("monitor", "refresh_secs")
    assert names["HERALD_SENDERS"] == ("senders",)
    assert names["HERALD_HOME"] == ("home",)
    sections = [f for f, i in Settings.model_fields.items() if "HERALD_" + f.upper() not in names]
    for section in sections:
        sub = Settings.model_fields[section].annotation.model_fields  # type: ignore[union-attr]
        for leaf in sub:
            assert f"HERALD_{section}_{leaf}".upper() in names


def test_a_child_process_gets_the_secrets_the_settings_file_leaves_out(tmp_path: Path) -> None:
    import subprocess
    import sys

    from herald.config import resolved_json, secret_environment
    from herald.runtime.processes import child_environment

    token, secrets = "t" * 24, ["whsec_" + "A" * 32, "whsec_" + "B" * 32]
    sasl, key = "correct-horse-battery", "key-passphrase"
    settings = Settings(
        web={"api_token": token},
        timers={"signing_secrets": secrets},
        kafka={
            "security_protocol": "sasl_ssl",
            "sasl_username": "alice",
            "sasl_password": sasl,
            "ssl_key_password": key,
        },
    )
    path = tmp_path / "settings.json"
    path.write_text(resolved_json(settings))
    for secret in (token, secrets[0], sasl, key):
        assert secret not in path.read_text()
        assert secret not in repr(settings)
    child = (
        "import json, sys; from herald.config import load_resolved; from pathlib import Path;"
        " s = load_resolved(Path(sys.argv[1]));"
        " print(json.dumps([s.web.api_token.get_secret_value(),"
        " [x.get_secret_value() for x in s.timers.signing_secrets],"
        " s.kafka.sasl_username, s.kafka.sasl_password.get_secret_value(),"
        " s.kafka.ssl_key_password.get_secret_value()]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", child, str(path)],
        env=child_environment(secret_environment(settings)),
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout) == [token, secrets, "alice", sasl, key]


def test_the_engine_is_tansu_unless_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    s = load_settings()
    assert (s.kafka.engine, s.kafka.brokers) == ("tansu", 1)
    monkeypatch.setenv("HERALD_KAFKA_ENGINE", "kafka")
    monkeypatch.setenv("HERALD_KAFKA_BROKERS", "3")
    s = load_settings()
    assert (s.kafka.engine, s.kafka.brokers) == ("kafka", 3)


def test_bad_engine_settings_name_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_KAFKA_ENGINE", "redpanda")
    monkeypatch.setenv("HERALD_KAFKA_BROKERS", "2")
    assert refused() == [
        "invalid configuration (2 error(s)):",
        "  kafka.engine = \"redpanda\": Input should be 'tansu' or 'kafka' "
        "[config key kafka.engine, env HERALD_KAFKA_ENGINE]",
        '  kafka.brokers = "2": a local Apache Kafka cluster has 1 or 3 brokers '
        "[config key kafka.brokers, env HERALD_KAFKA_BROKERS]",
    ]


def test_three_brokers_need_the_kafka_engine() -> None:
    lines = refused(overrides={"kafka": {"brokers": 3}}, flags={"kafka.brokers": "--brokers 3"})
    assert lines[1:] == [
        "  --brokers 3: 3 brokers need kafka.engine = kafka (Tansu runs one), e.g. --engine "
        "kafka or HERALD_KAFKA_ENGINE=kafka [setting kafka.brokers]"
    ]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"HERALD_KAFKA_SECURITY_PROTOCOL": "sasl_ssl", "HERALD_KAFKA_SASL_USERNAME": "alice"},
            "kafka = {...}: kafka.sasl_password is needed with kafka.security_protocol = sasl_ssl",
        ),
        (
            {"HERALD_KAFKA_SASL_USERNAME": "alice", "HERALD_KAFKA_SASL_PASSWORD": "pw"},
            "kafka = {...}: kafka.sasl_username is set but kafka.security_protocol is "
            "plaintext: use sasl_plaintext or sasl_ssl",
        ),
        (
            {"HERALD_KAFKA_SSL_CA_LOCATION": "/no/such/ca.pem"},
            'kafka.ssl_ca_location = "/no/such/ca.pem": no such file: /no/such/ca.pem',
        ),
        (
            {"HERALD_KAFKA_SECURITY_PROTOCOL": "ssl", "HERALD_KAFKA_SSL_KEY_LOCATION": "{file}"},
            "kafka = {...}: kafka.ssl_certificate_location and kafka.ssl_key_location go "
            "together (a client certificate and its private key)",
        ),
        (
            {"HERALD_KAFKA_SSL_CA_LOCATION": "{file}"},
            "kafka = {...}: kafka.ssl_ca_location is set but kafka.security_protocol is "
            "plaintext: use ssl or sasl_ssl",
        ),
        (
            {"HERALD_KAFKA_SECURITY_PROTOCOL": "tls"},
            "kafka.security_protocol = \"tls\": Input should be 'plaintext', 'ssl', "
            "'sasl_plaintext' or 'sasl_ssl'",
        ),
    ],
)
def test_incomplete_or_contradictory_kafka_security_is_refused(
    env: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pem = tmp_path / "some.pem"
    pem.write_text("-----BEGIN CERTIFICATE-----\n")
    for name, value in env.items():
        monkeypatch.setenv(name, value.replace("{file}", str(pem)))
    (line,) = refused()[1:]
    assert line.strip().startswith(message), line
    assert "pw" not in line.split(":", 1)[0]


def test_kafka_security_settings_become_client_properties(tmp_path: Path) -> None:
    from herald import kafka

    ca, cert, key = (tmp_path / n for n in ("ca.pem", "client.pem", "client.key"))
    for f in (ca, cert, key):
        f.write_text("pem")
    s = Settings(
        kafka={
            "bootstrap": "b:9093",
            "security_protocol": "sasl_ssl",
            "sasl_mechanism": "SCRAM-SHA-256",
            "sasl_username": "alice",
            "sasl_password": "s3cret-s3cret",
            "ssl_ca_location": str(ca),
            "ssl_certificate_location": str(cert),
            "ssl_key_location": str(key),
            "ssl_key_password": "k3y",
            "client_config": {"ssl.endpoint.identification.algorithm": "none"},
        }
    )
    conf = kafka.consumer_config(s.kafka, "g")
    assert {k: v for k, v in conf.items() if k.startswith(("sasl", "ssl", "security"))} == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": "alice",
        "sasl.password": "s3cret-s3cret",
        "ssl.ca.location": str(ca),
        "ssl.certificate.location": str(cert),
        "ssl.key.location": str(key),
        "ssl.key.password": "k3y",
        "ssl.endpoint.identification.algorithm": "none",
    }
    plain = kafka.consumer_config(Settings(kafka={"bootstrap": "b:9092"}).kafka, "g")
    assert [k for k in plain if k.startswith(("sasl", "ssl", "security"))] == []


def test_fetch_wait_is_librdkafkas_unless_set() -> None:
    from herald import kafka

    unset = kafka.consumer_config(Settings(kafka={"bootstrap": "b:9092"}).kafka, "g")
    assert "fetch.wait.max.ms" not in unset
    embedded = kafka.for_embedded(Settings().kafka, "127.0.0.1:9092")
    assert embedded.fetch_wait_max_ms is None
    chosen = Settings(kafka={"bootstrap": "b:9092", "fetch_wait_max_ms": 50}).kafka
    assert kafka.consumer_config(chosen, "g")["fetch.wait.max.ms"] == 50


def test_a_prompt_consumer_differs_only_in_its_short_fetch_wait_whatever_the_setting() -> None:
    from herald import kafka

    for chosen in (None, 50, 500):
        ks = Settings(kafka={"bootstrap": "b:9092", "fetch_wait_max_ms": chosen}).kafka
        usual = kafka.consumer_config(ks, "g", **{"enable.partition.eof": True})
        prompt = kafka.prompt_consumer_config(ks, "g", **{"enable.partition.eof": True})
        assert prompt.pop("fetch.wait.max.ms") == kafka.PROMPT_FETCH_WAIT_MS == 10
        usual.pop("fetch.wait.max.ms", None)
        assert prompt == usual


def test_producers_compress_with_lz4_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    from herald import kafka

    default = load_settings(overrides={"kafka": {"bootstrap": "b:9092"}}).kafka
    assert kafka.producer_config(default)["compression.type"] == "lz4"
    txn = kafka.transactional_producer_config(default, "t-0")
    assert (txn["compression.type"], txn["transactional.id"]) == ("lz4", "t-0")
    assert "compression.type" not in kafka.consumer_config(default, "g")
    monkeypatch.setenv("HERALD_KAFKA_COMPRESSION", "none")
    off = load_settings(overrides={"kafka": {"bootstrap": "b:9092"}}).kafka
    assert kafka.producer_config(off)["compression.type"] == "none"
    monkeypatch.setenv("HERALD_KAFKA_COMPRESSION", "brotli")
    assert refused() == [
        "invalid configuration (1 error(s)):",
        "  kafka.compression = \"brotli\": Input should be 'none', 'gzip', 'snappy', 'lz4' or "
        "'zstd' [config key kafka.compression, env HERALD_KAFKA_COMPRESSION]",
    ]


def test_a_fan_in_consumer_fetches_less_a_partition_only_while_batches_are_compressed() -> None:
    from herald import kafka

    prefetch = ("max.partition.fetch.bytes", "queued.max.messages.kbytes", "queued.min.messages")

    def bounds(conf: dict[str, object]) -> tuple[object, ...]:
        return tuple(conf.get(key) for key in prefetch)

    lz4 = Settings(kafka={"bootstrap": "b:9092"}).kafka
    assert bounds(kafka.consumer_config(lz4, "g", fan_in=True)) == (32 * 1024, 512, 1000)
    assert bounds(kafka.consumer_config(lz4, "g")) == (None, 4096, 10_000)
    off = Settings(kafka={"bootstrap": "b:9092", "compression": "none"}).kafka
    assert bounds(kafka.consumer_config(off, "g", fan_in=True)) == (None, 4096, 10_000)
    # Defaults, all of them: kafka.client_config still wins.
    mine = Settings(
        kafka={"bootstrap": "b:9092", "client_config": {"max.partition.fetch.bytes": "65536"}}
    ).kafka
    assert bounds(kafka.consumer_config(mine, "g", fan_in=True)) == ("65536", 512, 1000)


def test_client_config_wins_over_heralds_client_defaults_but_not_over_what_a_client_needs() -> None:
    from herald import kafka

    ks = Settings(
        kafka={
            "bootstrap": "b:9092",
            "session_timeout_ms": 6000,
            "client_config": {
                "linger.ms": "50",
                "compression.type": "zstd",
                "fetch.max.bytes": "1048576",
                "session.timeout.ms": "9000",
                "transactional.id": "mine",
            },
        }
    ).kafka
    producer = kafka.producer_config(ks)
    assert (producer["linger.ms"], producer["compression.type"]) == ("50", "zstd")
    consumer = kafka.consumer_config(ks, "g")
    assert (consumer["fetch.max.bytes"], consumer["session.timeout.ms"]) == ("1048576", "9000")
    # What the code passes for a client's own correctness is set after it.
    assert kafka.transactional_producer_config(ks, "sender-0")["transactional.id"] == "sender-0"
    assert kafka.producer_config(ks, **{"linger.ms": 0})["linger.ms"] == 0
