"""Small commands: ask for a run, migrate the database."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from herald import kafka, runs
from herald.config import load_settings
from herald.db.engine import migrate
from herald.db.pg import safe_url
from herald.errors import HeraldError


def submit_main(argv: Sequence[str]) -> int:
    """``herald submit --messages N``: publish a run request; print its id."""
    p = argparse.ArgumentParser(prog="herald submit", description="ask for a run")
    p.add_argument("--config", type=Path)
    p.add_argument("--messages", type=int)
    p.add_argument("--rate", type=float)
    p.add_argument("--seed", type=int)
    args = p.parse_args(argv)
    try:
        settings = load_settings(args.config)
        request = runs.make_request(
            args.messages or settings.producer.num_messages,
            seed=args.seed if args.seed is not None else settings.producer.seed,
            rate=args.rate or settings.producer.rate,
        )
        kafka.wait_for_broker(settings.kafka)
        runs.submit(settings.kafka, request)
    except HeraldError as exc:
        print(f"herald: {exc}", file=sys.stderr)
        return exc.exit_code
    except ValueError as exc:  # msgspec.ValidationError: a flag out of range
        print(f"herald: invalid run request: {exc}", file=sys.stderr)
        return 2
    print(request.run_id)
    return 0


def migrate_main(argv: Sequence[str]) -> int:
    """``herald migrate``: apply the Alembic migrations to ``database.url``."""
    p = argparse.ArgumentParser(prog="herald migrate", description="apply migrations")
    p.add_argument("--config", type=Path)
    args = p.parse_args(argv)
    try:
        settings = load_settings(args.config)
        if settings.database.url is None:
            print("herald: database.url is unset (HERALD_DATABASE_URL)", file=sys.stderr)
            return 2
        migrate(settings.database.url)
    except HeraldError as exc:
        print(f"herald: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"migrated {safe_url(settings.database.url)}")
    return 0
