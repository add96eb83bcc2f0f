"""Embedded broker and database, and local process supervision."""
