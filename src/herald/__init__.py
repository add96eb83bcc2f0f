"""herald: simulate, run and measure message delivery over Kafka."""

__version__ = "0.1.0"
