"""herald's Locust load tests: one locustfile per load scenario (see docs/load.md).

Run them with ``poetry run invoke load.run --scenario NAME``; the registry of scenarios, the
embedded stack, the reports and the checks are in :mod:`herald.load`.
"""
