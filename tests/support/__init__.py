"""Reusable real test peers (a webhook receiver)."""
