"""Client security of a local Apache Kafka cluster (SASL/SCRAM, TLS with PEM files), and what a
failed connection means in words a user can act on (:func:`herald.kafka.wait_for_broker`
raises with it at once)."""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError
from pydantic import SecretStr

SCRAM_MECHANISM = "SCRAM-SHA-512"
SCRAM_ITERATIONS = 4096  # Kafka's minimum and kafka-configs' default for SCRAM-SHA-512


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: the CA certificate(s) to trust, a certificate chain and its private key.

    The broker's key must be PKCS#8 (``BEGIN PRIVATE KEY``), unencrypted: that is what
    Kafka's PEM key store reads. ``openssl pkcs8 -topk8 -nocrypt`` converts other keys.
    """

    ca: Path
    cert: Path
    key: Path


@dataclass(frozen=True)
class Security:
    """How clients authenticate to the cluster's client listener.

    ``scram_users``: user -> password, created when the storage is formatted (SCRAM-SHA-512).
    ``tls``: the broker's certificate and key, and the CA that signs client certificates.
    ``client_auth``: mutual TLS (``ssl.client.auth=required``).
    ``client_tls``: the identity ``client_settings`` hands to clients (its ``ca`` verifies the
    broker); unset: ``tls.ca`` and no client certificate.
    """

    scram_users: Mapping[str, str] = field(default_factory=dict, repr=False)
    tls: TlsFiles | None = None
    client_auth: bool = False
    client_tls: TlsFiles | None = None

    def __post_init__(self) -> None:
        if self.client_auth and self.tls is None:
            raise ValueError("client_auth needs tls (mutual TLS is TLS)")

    @property
    def protocol(self) -> str:
        """The client listener's security protocol."""
        sasl, ssl = bool(self.scram_users), self.tls is not None
        return {
            (False, False): "PLAINTEXT",
            (True, False): "SASL_PLAINTEXT",
            (False, True): "SSL",
            (True, True): "SASL_SSL",
        }[(sasl, ssl)]

    def __repr__(self) -> str:  # never the passwords
        users = ", ".join(sorted(self.scram_users))
        return (
            f"Security(protocol={self.protocol}, scram_users=[{users}], "
            f"client_auth={self.client_auth})"
        )


NO_SECURITY = Security()


def scram_credential(
    user: str, password: str, *, iterations: int = SCRAM_ITERATIONS, salt: bytes | None = None
) -> str:
    """The storage tool's ``--add-scram`` argument for ``user``: salted, never the password."""
    salt = salt if salt is not None else os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return (
        f"{SCRAM_MECHANISM}=[name={user},iterations={iterations},"
        f'salt="{base64.b64encode(salt).decode()}",'
        f'saltedpassword="{base64.b64encode(salted).decode()}"]'
    )


def client_fields(security: Security, user: str | None = None) -> dict[str, Any]:
    """The :class:`herald.config.KafkaSettings` fields of a client of ``security``'s listener
    (``user``: the first SCRAM user by default), for ``model_copy(update=...)``."""
    fields: dict[str, Any] = {"security_protocol": security.protocol.lower()}
    if security.scram_users:
        name = user if user is not None else sorted(security.scram_users)[0]
        fields["sasl_mechanism"] = SCRAM_MECHANISM
        fields["sasl_username"] = name
        fields["sasl_password"] = SecretStr(security.scram_users[name])
    if security.tls is not None:
        client = security.client_tls
        fields["ssl_ca_location"] = client.ca if client else security.tls.ca
        if client is not None:
            fields["ssl_certificate_location"] = client.cert
            fields["ssl_key_location"] = client.key
    return fields


UNTRUSTED, REFUSED, CREDENTIALS = "untrusted broker", "refused client", "credentials"


def problem_kind(err: KafkaError) -> str | None:
    """Which security problem ``err`` reports, if any: ``UNTRUSTED`` (the client does not
    trust the broker's certificate), ``REFUSED`` (the broker refused the client's
    certificate), ``CREDENTIALS`` (SASL authentication failed)."""
    code, text = err.code(), err.str().lower()
    if code in (KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED):
        return CREDENTIALS
    # librdkafka puts OpenSSL's reason in the text only: an untrusted broker fails the
    # handshake (_SSL); a refused client certificate arrives as the broker's TLS alert on the
    # first read (_TRANSPORT under TLS 1.3, _SSL under 1.2).
    if code == KafkaError._SSL and "certificate verify failed" in text:
        return UNTRUSTED
    if code in (KafkaError._SSL, KafkaError._TRANSPORT) and any(
        alert in text for alert in ("alert bad certificate", "certificate required", "unknown ca")
    ):
        return REFUSED
    return None


def explain_connection_error(err: KafkaError, config: Mapping[str, Any]) -> str:
    """What a client's connection failure means, naming the setting to fix; never a password."""
    detail = _redact(err.str(), config)
    kind = problem_kind(err)
    if kind == CREDENTIALS:
        return (
            f"authentication failed for user {config.get('sasl.username', '?')} "
            f"(SASL {config.get('sasl.mechanism', '?')}): wrong username or password "
            f"(kafka.sasl_username, kafka.sasl_password) ({detail})"
        )
    if kind == UNTRUSTED:
        ca = config.get("ssl.ca.location", "(unset: the system's CA certificates)")
        return (
            f"TLS handshake failed: the broker's certificate is not trusted by "
            f"kafka.ssl_ca_location={ca}, or does not name the host connected to ({detail})"
        )
    if kind == REFUSED:
        return (
            "TLS handshake failed: the broker refused this client's certificate (its listener "
            "requires one signed by a CA it trusts: set kafka.ssl_certificate_location and "
            f"kafka.ssl_key_location) ({detail})"
        )
    if err.code() == KafkaError._SSL:
        return f"TLS handshake failed: {detail}"
    return f"Kafka unreachable ({detail})"


def _redact(text: str, config: Mapping[str, Any]) -> str:
    password = config.get("sasl.password")
    if password:
        text = text.replace(str(password), "***")
    return text
