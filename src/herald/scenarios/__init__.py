"""The scenarios (``base.Scenario``): ``sms`` (the default), ``retail`` and ``telemetry``."""
