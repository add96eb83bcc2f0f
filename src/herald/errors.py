"""herald's error hierarchy and the exit codes a supervisor or CI can tell apart."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1  # the run did not complete or its counts disagree
EXIT_CONFIG = 2  # invalid configuration: nothing was started
EXIT_BROKER = 3  # Kafka unreachable within the deadline, or a fatal Kafka error
EXIT_DATABASE = 4  # Postgres unreachable within the deadline
EXIT_INTERRUPTED = 130  # a second signal asked to stop at once


class HeraldError(Exception):
    """Base class of every error herald raises on purpose."""

    exit_code = EXIT_FAILURE


class ConfigError(HeraldError):
    """The configuration is invalid; the message lists every bad field."""

    exit_code = EXIT_CONFIG


class BrokerError(HeraldError):
    """Kafka is unreachable or answered with a fatal error."""

    exit_code = EXIT_BROKER


class StorageError(HeraldError):
    """Postgres is unreachable or refused a write."""

    exit_code = EXIT_DATABASE


class InvalidMessage(HeraldError):
    """A record does not match its topic's contract."""
