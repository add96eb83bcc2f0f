"""Workload generators. ``sms`` is the flagship; retail and telemetry come later."""
