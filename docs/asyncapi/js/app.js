
    const schema = {
  "asyncapi": "3.0.0",
  "id": "urn:herald:topics",
  "info": {
    "title": "herald topics",
    "version": "0.1.0",
    "description": "herald generates, runs and measures message workloads over Kafka. Its services meet only on\nthese topics, so the topics are its API: this document is generated from the contracts in\nthe code (`herald.contracts` and each scenario's module under `herald.scenarios`, the one\ndefinition the services serialise and validate with) and from the service registry, by\n`poetry run invoke app.gen-asyncapi-spec`.\n\n```\nweb / CLI -> herald.runs -> producer -> herald.<scenario>.<work> -> workers (consumer group)\n                                                                      |  (transactions)\n         monitor, recorder <- herald.<scenario>.results <-------------+\n every service, the recorder (run complete), the monitor (figures) -> herald.control\n records that cannot be processed -> herald.dlq (reason and source in headers)\n```\n\n* Every record is JSON (UTF-8), except dead letters, which keep the original bytes.\n* Every message has a stable id chosen by its creator; the record key is that id, so\n  replays are harmless when writes are idempotent on it.\n* With `kafka.namespace` set (`HERALD_KAFKA_NAMESPACE`), every topic, consumer group and\n  transactional id is prefixed with `{namespace}.` (tests and tenants sharing a cluster).\n* A run request names its scenario (`scenario`; `sms` when absent) and carries that\n  scenario's parameters.\n* A scenario without workers (the retail store) has its facts published by the producer from\n  a timeline, on a clock; the run's size is announced once produced (`run-produced` on\n  `herald.control`).\n\n### Writing a new consumer of results\n\nSubscribe to a scenario's results topic (e.g. `herald.sms.results`) with your own\n`group.id`, `isolation.level=read_committed` (results are written in Kafka transactions)\nand `auto.offset.reset=earliest`. Each message has exactly one committed result; make your\nwrites idempotent on its message id (the key) and commit offsets after your writes are\ndurable. Decode with the result's schema below: unknown fields are rejected by herald's own\ndecoder, so a new field is a new contract version. Timestamps are RFC 3339, UTC.\n",
    "tags": [
      {
        "name": "control"
      },
      {
        "name": "facts"
      },
      {
        "name": "work"
      },
      {
        "name": "dead letters"
      }
    ]
  },
  "defaultContentType": "application/json",
  "servers": {
    "embedded": {
      "host": "127.0.0.1:{port}",
      "protocol": "kafka",
      "title": "Embedded broker",
      "description": "The Tansu broker herald starts itself when `kafka.bootstrap` is unset (laptops, CI, tests): memory storage, one broker, a free local port.",
      "variables": {
        "port": {
          "default": "9092",
          "description": "The port chosen at start."
        }
      }
    },
    "compose": {
      "host": "kafka:9092",
      "protocol": "kafka",
      "title": "docker compose",
      "description": "The single Apache Kafka (KRaft) broker of `docker compose`, as the services in the compose network reach it."
    },
    "cluster": {
      "host": "{broker}:9093",
      "protocol": "kafka-secure",
      "title": "Kafka cluster",
      "description": "Any Kafka cluster of 3+ brokers (replication factor 3) over TLS with SASL/SCRAM-SHA-512. Set `HERALD_KAFKA_BOOTSTRAP` to the brokers and `HERALD_KAFKA_CLIENT_CONFIG` to the librdkafka security properties.",
      "variables": {
        "broker": {
          "enum": [
            "kafka-1",
            "kafka-2",
            "kafka-3"
          ],
          "default": "kafka-1",
          "description": "One of the cluster's brokers."
        }
      },
      "security": [
        {
          "type": "scramSha512",
          "description": "SASL_SSL with SCRAM-SHA-512: `HERALD_KAFKA_CLIENT_CONFIG={\"security.protocol\": \"SASL_SSL\", \"sasl.mechanism\": \"SCRAM-SHA-512\", \"sasl.username\": \"…\", \"sasl.password\": \"…\", \"ssl.ca.location\": \"…\"}`."
        },
        {
          "type": "X509",
          "description": "TLS client certificates: `HERALD_KAFKA_CLIENT_CONFIG={\"security.protocol\": \"SSL\", \"ssl.ca.location\": \"…\", \"ssl.certificate.location\": \"…\", \"ssl.key.location\": \"…\"}`."
        }
      ]
    }
  },
  "channels": {
    "runs": {
      "address": "herald.runs",
      "title": "herald.runs",
      "description": "Requests to run a workload (control). Key: run_id. Partitions: `kafka.partitions` (12 by default); replication factor: `kafka.replication_factor` (1 by default, 3 on a cluster).",
      "tags": [
        {
          "name": "control"
        }
      ],
      "messages": {
        "RunRequest": {
          "name": "RunRequest",
          "title": "RunRequest",
          "summary": "A request to run a workload: its scenario and that scenario's parameters.",
          "contentType": "application/json",
          "payload": {
            "description": "A run request: one of the scenarios' (by `scenario`; `sms` when absent).",
            "oneOf": [
              {
                "title": "RetailRun",
                "description": "A request to simulate a store over a period: its timeline is published on a clock.",
                "type": "object",
                "properties": {
                  "run_id": {
                    "description": "Run id",
                    "type": "string",
                    "pattern": "^[A-Za-z0-9_-]{1,64}$",
                    "x-parser-schema-id": "<anonymous-schema-1>"
                  },
                  "scenario": {
                    "description": "The workload generator",
                    "enum": [
                      "retail"
                    ],
                    "default": "retail",
                    "x-parser-schema-id": "<anonymous-schema-2>"
                  },
                  "seed": {
                    "description": "Seed of the content: the same seed, the same messages",
                    "type": "integer",
                    "minimum": 0,
                    "x-parser-schema-id": "<anonymous-schema-3>"
                  },
                  "requested_at": {
                    "format": "date-time",
                    "description": "When the run was asked for",
                    "type": "string",
                    "x-parser-schema-id": "<anonymous-schema-4>"
                  },
                  "config": {
                    "description": "Settings the run was asked with, for the record",
                    "type": "object",
                    "default": {},
                    "x-parser-schema-id": "<anonymous-schema-5>"
                  },
                  "callback_url": {
                    "anyOf": [
                      {
                        "description": "POSTed once, with the run's totals, when it completes (a webhook the notifier delivers, `webhook-id` `run-<run_id>-completed`)",
                        "type": "string",
                        "maxLength": 2048,
                        "x-parser-schema-id": "<anonymous-schema-7>"
                      },
                      {
                        "type": "null",
                        "x-parser-schema-id": "<anonymous-schema-8>"
                      }
                    ],
                    "default": null,
                    "x-parser-schema-id": "<anonymous-schema-6>"
                  },
                  "status_callback_url": {
                    "anyOf": [
                      {
                        "description": "POSTed once per message outcome (`webhook-id` `<message id>-status`), as the recorder stores it",
                        "type": "string",
                        "maxLength": 2048,
                        "x-parser-schema-id": "<anonymous-schema-10>"
                      },
                      {
                        "type": "null",
                        "x-parser-schema-id": "<anonymous-schema-11>"
                      }
                    ],
                    "default": null,
                    "x-parser-schema-id": "<anonymous-schema-9>"
                  },
                  "opens_at": {
                    "format": "date-time",
                    "description": "Start of the simulated period (opening)",
                    "type": "string",
                    "x-parser-schema-id": "<anonymous-schema-12>"
                  },
                  "closes_at": {
                    "format": "date-time",
                    "description": "Its end: everyone has left by then",
                    "type": "string",
                    "x-parser-schema-id": "<anonymous-schema-13>"
                  },
                  "consume_from": {
                    "description": "`earliest`, `latest` (the request's time) or an ISO 8601 time",
                    "type": "string",
                    "default": "earliest",
                    "x-parser-schema-id": "<anonymous-schema-14>"
                  },
                  "speed": {
                    "anyOf": [
                      {
                        "description": "Simulated seconds per wall second",
                        "type": "number",
                        "exclusiveMinimum": 0,
                        "x-parser-schema-id": "<anonymous-schema-16>"
                      },
                      {
                        "type": "null",
                        "x-parser-schema-id": "<anonymous-schema-17>"
                      }
                    ],
                    "default": null,
                    "x-parser-schema-id": "<anonymous-schema-15>"
                  },
                  "consume_frequency": {
                    "description": "Seconds a tick",
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "maximum": 3600,
                    "default": 1,
                    "x-parser-schema-id": "<anonymous-schema-18>"
                  },
                  "consume_batch_size": {
                    "description": "Events a tick",
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 1000000,
                    "default": 10,
                    "x-parser-schema-id": "<anonymous-schema-19>"
                  },
                  "store_height": {
                    "type": "integer",
                    "minimum": 2,
                    "maximum": 1000,
                    "default": 10,
                    "x-parser-schema-id": "<anonymous-schema-20>"
                  },
                  "store_width": {
                    "type": "integer",
                    "minimum": 2,
                    "maximum": 1000,
                    "default": 6,
                    "x-parser-schema-id": "<anonymous-schema-21>"
                  },
                  "entrance": {
                    "description": "The entrance cell, [x, y]",
                    "type": "array",
                    "items": {
                      "type": "integer",
                      "minimum": 0,
                      "maximum": 999,
                      "x-parser-schema-id": "<anonymous-schema-23>"
                    },
                    "maxItems": 2,
                    "minItems": 2,
                    "x-parser-schema-id": "<anonymous-schema-22>"
                  },
                  "customers_average_in_store": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "maximum": 100000,
                    "default": 6,
                    "x-parser-schema-id": "<anonymous-schema-24>"
                  },
                  "dwell_mean_secs": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "maximum": 86400,
                    "default": 600,
                    "x-parser-schema-id": "<anonymous-schema-25>"
                  },
                  "move_interval_secs": {
                    "type": "number",
                    "minimum": 1,
                    "maximum": 3600,
                    "default": 15,
                    "x-parser-schema-id": "<anonymous-schema-26>"
                  },
                  "arrival_profile": {
                    "enum": [
                      "daily",
                      "flat"
                    ],
                    "default": "flat",
                    "x-parser-schema-id": "<anonymous-schema-27>"
                  },
                  "customers": {
                    "description": "The simulated customers' ids",
                    "type": "array",
                    "items": {
                      "description": "Customer id",
                      "examples": [
                        "997"
                      ],
                      "type": "string",
                      "pattern": "^[A-Za-z0-9_.:-]{1,64}$",
                      "x-parser-schema-id": "<anonymous-schema-29>"
                    },
                    "maxItems": 100000,
                    "minItems": 1,
                    "x-parser-schema-id": "<anonymous-schema-28>"
                  },
                  "weights": {
                    "anyOf": [
                      {
                        "description": "Visit weights",
                        "type": "array",
                        "items": {
                          "type": "number",
                          "exclusiveMinimum": 0,
                          "x-parser-schema-id": "<anonymous-schema-32>"
                        },
                        "x-parser-schema-id": "<anonymous-schema-31>"
                      },
                      {
                        "type": "null",
                        "x-parser-schema-id": "<anonymous-schema-33>"
                      }
                    ],
                    "default": null,
                    "x-parser-schema-id": "<anonymous-schema-30>"
                  }
                },
                "required": [
                  "run_id",
                  "seed",
                  "requested_at",
                  "opens_at",
                  "closes_at",
                  "entrance",
                  "customers"
                ],
                "additionalProperties": false,
                "x-parser-schema-id": "RetailRun"
              },
              {
                "title": "SmsRun",
                "description": "A request to run an SMS campaign: the producer generates `messages` messages for it.",
                "type": "object",
                "properties": {
                  "run_id": {
                    "description": "Run id",
                    "type": "string",
                    "pattern": "^[A-Za-z0-9_-]{1,64}$",
                    "x-parser-schema-id": "<anonymous-schema-34>"
                  },
                  "scenario": {
                    "description": "The workload generator",
                    "enum": [
                      "sms"
                    ],
                    "default": "sms",
                    "x-parser-schema-id": "<anonymous-schema-35>"
                  },
                  "seed": {
                    "description": "Seed of the content: the same seed, the same messages",
                    "type": "integer",
                    "minimum": 0,
                    "x-parser-schema-id": "<anonymous-schema-36>"
                  },
                  "requested_at": {
                    "format": "date-time",
                    "description": "When the run was asked for",
                    "type": "string",
                    "x-parser-schema-id": "<anonymous-schema-37>"
                  },
                  "config": {
                    "description": "Settings the run was asked with, for the record",
                    "type": "object",
                    "default": {},
                    "x-parser-schema-id": "<anonymous-schema-38>"
                  },
                  "callback_url": {
                    "anyOf": [
                      {
                        "description": "POSTed once, with the run's totals, when it completes (a webhook the notifier delivers, `webhook-id` `run-<run_id>-completed`)",
                        "type": "string",
                        "maxLength": 2048,
                        "x-parser-schema-id": "<anonymous-schema-40>"
                      },
                      {
                        "type": "null",
                        "x-parser-schema-id": "<anonymous-schema-41>"
                      }
                    ],
                    "default": null,
                    "x-parser-schema-id": "<anonymous-schema-39>"
                  },
                  "status_callback_url": {
                    "anyOf": [
                      {
                        "description": "POSTed once per message outcome (`webhook-id` `<message id>-status`), as the recorder stores it",
                        "type": "string",
                        "maxLength": 2048,
                        "x-parser-schema-id": "<anonymous-schema-43>"
                      },
                      {
                        "type": "null",
                        "x-parser-schema-id": "<anonymous-schema-44>"
                      }
                    ],
                    "default": null,
                    "x-parser-schema-id": "<anonymous-schema-42>"
                  },
                  "messages": {
                    "description": "How many messages the run produces",
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 1000000000,
                    "x-parser-schema-id": "<anonymous-schema-45>"
                  },
                  "rate": {
                    "anyOf": [
                      {
                        "description": "Producer rate limit, messages/s; null: unpaced",
                        "type": "number",
                        "exclusiveMinimum": 0,
                        "x-parser-schema-id": "<anonymous-schema-47>"
                      },
                      {
                        "type": "null",
                        "x-parser-schema-id": "<anonymous-schema-48>"
                      }
                    ],
                    "default": null,
                    "x-parser-schema-id": "<anonymous-schema-46>"
                  }
                },
                "required": [
                  "run_id",
                  "seed",
                  "requested_at",
                  "messages"
                ],
                "additionalProperties": false,
                "x-parser-schema-id": "SmsRun"
              },
              {
                "title": "TelemetryRun",
                "description": "A simulated ground pass (`sim.run --scenario telemetry`): one stream per ship. Its\n    streams are schedules that the scheduler starts; the request only records the run.",
                "type": "object",
                "properties": {
                  "run_id": {
                    "description": "Run id",
                    "type": "string",
                    "pattern": "^[A-Za-z0-9_-]{1,64}$",
                    "x-parser-schema-id": "<anonymous-schema-49>"
                  },
                  "scenario": {
                    "description": "The workload",
                    "enum": [
                      "telemetry"
                    ],
                    "default": "telemetry",
                    "x-parser-schema-id": "<anonymous-schema-50>"
                  },
                  "seed": {
                    "description": "Seed of the content: the same seed, the same messages",
                    "type": "integer",
                    "minimum": 0,
                    "x-parser-schema-id": "<anonymous-schema-51>"
                  },
                  "requested_at": {
                    "format": "date-time",
                    "description": "When the run was asked for",
                    "type": "string",
                    "x-parser-schema-id": "<anonymous-schema-52>"
                  },
                  "config": {
                    "description": "Settings the run was asked with, for the record",
                    "type": "object",
                    "default": {},
                    "x-parser-schema-id": "<anonymous-schema-53>"
                  },
                  "callback_url": {
                    "anyOf": [
                      {
                        "description": "POSTed once, with the run's totals, when it completes (a webhook the notifier delivers, `webhook-id` `run-<run_id>-completed`)",
                        "type": "string",
                        "maxLength": 2048,
                        "x-parser-schema-id": "<anonymous-schema-55>"
                      },
                      {
                        "type": "null",
                        "x-parser-schema-id": "<anonymous-schema-56>"
                      }
                    ],
                    "default": null,
                    "x-parser-schema-id": "<anonymous-schema-54>"
                  },
                  "status_callback_url": {
                    "anyOf": [
                      {
                        "description": "POSTed once per message outcome (`webhook-id` `<message id>-status`), as the recorder stores it",
                        "type": "string",
                        "maxLength": 2048,
                        "x-parser-schema-id": "<anonymous-schema-58>"
                      },
                      {
                        "type": "null",
                        "x-parser-schema-id": "<anonymous-schema-59>"
                      }
                    ],
                    "default": null,
                    "x-parser-schema-id": "<anonymous-schema-57>"
                  },
                  "ships": {
                    "type": "array",
                    "items": {
                      "description": "The ship's name",
                      "examples": [
                        "voyager-1"
                      ],
                      "type": "string",
                      "pattern": "^[A-Za-z][A-Za-z0-9_-]{0,31}$",
                      "x-parser-schema-id": "<anonymous-schema-61>"
                    },
                    "maxItems": 1000,
                    "minItems": 1,
                    "x-parser-schema-id": "<anonymous-schema-60>"
                  },
                  "start_at": {
                    "format": "date-time",
                    "description": "When the streams start",
                    "type": "string",
                    "x-parser-schema-id": "<anonymous-schema-62>"
                  },
                  "duration_s": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "maximum": 604800,
                    "x-parser-schema-id": "<anonymous-schema-63>"
                  },
                  "rate_hz": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "maximum": 100000,
                    "x-parser-schema-id": "<anonymous-schema-64>"
                  },
                  "loss": {
                    "type": "number",
                    "minimum": 0,
                    "exclusiveMaximum": 1,
                    "default": 0,
                    "x-parser-schema-id": "<anonymous-schema-65>"
                  },
                  "host": {
                    "description": "Host name or address",
                    "type": "string",
                    "maxLength": 253,
                    "minLength": 1,
                    "default": "127.0.0.1",
                    "x-parser-schema-id": "<anonymous-schema-66>"
                  },
                  "ports": {
                    "description": "The ingestors' ports",
                    "type": "array",
                    "items": {
                      "type": "integer",
                      "minimum": 1,
                      "maximum": 65535,
                      "x-parser-schema-id": "<anonymous-schema-68>"
                    },
                    "minItems": 1,
                    "x-parser-schema-id": "<anonymous-schema-67>"
                  }
                },
                "required": [
                  "run_id",
                  "seed",
                  "requested_at",
                  "ships",
                  "start_at",
                  "duration_s",
                  "rate_hz",
                  "ports"
                ],
                "additionalProperties": false,
                "x-parser-schema-id": "TelemetryRun"
              }
            ],
            "x-parser-schema-id": "RunRequest"
          },
          "bindings": {
            "kafka": {
              "key": {
                "description": "The run id (`run_id`).",
                "type": "string",
                "pattern": "^[A-Za-z0-9_-]{1,64}$"
              },
              "bindingVersion": "0.5.0"
            }
          },
          "examples": [
            {
              "name": "two-hours",
              "summary": "Two hours of the store from opening, at 600× real time",
              "payload": {
                "run_id": "3c5e0a9b7d21",
                "scenario": "retail",
                "seed": 42,
                "requested_at": "2025-01-15T09:30:00Z",
                "config": {},
                "callback_url": null,
                "status_callback_url": null,
                "opens_at": "2025-01-15T08:00:00Z",
                "closes_at": "2025-01-15T10:00:00Z",
                "consume_from": "earliest",
                "speed": 600,
                "consume_frequency": 0.1,
                "consume_batch_size": 1000,
                "store_height": 10,
                "store_width": 6,
                "entrance": [
                  3,
                  0
                ],
                "customers_average_in_store": 6,
                "dwell_mean_secs": 600,
                "move_interval_secs": 15,
                "arrival_profile": "flat",
                "customers": [
                  "1",
                  "2",
                  "3",
                  "4",
                  "5",
                  "6",
                  "7",
                  "8"
                ],
                "weights": null
              }
            },
            {
              "name": "unpaced",
              "summary": "10,000 messages as fast as the broker takes them",
              "payload": {
                "run_id": "7f3a9c2e41b0",
                "scenario": "sms",
                "seed": 42,
                "requested_at": "2025-01-15T09:30:00Z",
                "config": {},
                "callback_url": null,
                "status_callback_url": null,
                "messages": 10000,
                "rate": null
              }
            },
            {
              "name": "paced",
              "summary": "The same, at most 500 messages/s",
              "payload": {
                "run_id": "5b61d0e8a9c3",
                "scenario": "sms",
                "seed": 42,
                "requested_at": "2025-01-15T09:30:00Z",
                "config": {},
                "callback_url": null,
                "status_callback_url": null,
                "messages": 10000,
                "rate": 500
              }
            },
            {
              "name": "two-ships",
              "summary": "Two ships, 30 s at 20 Hz",
              "payload": {
                "run_id": "9d2b4f6a8c0e",
                "scenario": "telemetry",
                "seed": 7,
                "requested_at": "2026-12-01T09:00:00Z",
                "config": {},
                "callback_url": null,
                "status_callback_url": null,
                "ships": [
                  "ship-1",
                  "ship-2"
                ],
                "start_at": "2026-12-01T09:00:03Z",
                "duration_s": 30,
                "rate_hz": 20,
                "loss": 0,
                "host": "127.0.0.1",
                "ports": [
                  47100,
                  47101
                ]
              }
            }
          ],
          "x-parser-unique-object-id": "RunRequest"
        }
      },
      "bindings": {
        "kafka": {
          "topic": "herald.runs",
          "partitions": 12,
          "replicas": 1,
          "bindingVersion": "0.5.0"
        }
      },
      "x-parser-unique-object-id": "runs"
    },
    "retailEnter": {
      "address": "herald.retail.enter",
      "title": "herald.retail.enter",
      "description": "Customers entering the store (facts; `retail.enter_topic`). Key: customer id. Partitions: `kafka.partitions` (12 by default); replication factor: `kafka.replication_factor` (1 by default, 3 on a cluster).",
      "tags": [
        {
          "name": "facts"
        }
      ],
      "messages": {
        "RetailEnter": {
          "name": "RetailEnter",
          "title": "RetailEnter",
          "summary": "A customer enters the store, at its entrance.",
          "contentType": "application/json",
          "payload": {
            "title": "RetailEnter",
            "description": "A customer enters the store, at its entrance.",
            "type": "object",
            "properties": {
              "event_id": {
                "description": "herald's event id, `{run_id}-{seq}`",
                "type": "string",
                "pattern": "^[A-Za-z0-9_:.-]{1,128}$",
                "x-parser-schema-id": "<anonymous-schema-69>"
              },
              "run_id": {
                "description": "Run id",
                "type": "string",
                "pattern": "^[A-Za-z0-9_-]{1,64}$",
                "x-parser-schema-id": "<anonymous-schema-70>"
              },
              "seq": {
                "description": "The event's place on the run's timeline",
                "type": "integer",
                "minimum": 0,
                "x-parser-schema-id": "<anonymous-schema-71>"
              },
              "id": {
                "description": "The customer; the record key",
                "examples": [
                  "997"
                ],
                "type": "string",
                "pattern": "^[A-Za-z0-9_.:-]{1,64}$",
                "x-parser-schema-id": "<anonymous-schema-72>"
              },
              "ts": {
                "description": "Event time, epoch seconds (simulated), to the millisecond",
                "type": "number",
                "minimum": 0,
                "x-parser-schema-id": "<anonymous-schema-73>"
              },
              "x": {
                "description": "Column of the cell, from 0",
                "type": "integer",
                "minimum": 0,
                "maximum": 999,
                "x-parser-schema-id": "<anonymous-schema-74>"
              },
              "y": {
                "description": "Row of the cell, from 0 (the front wall)",
                "type": "integer",
                "minimum": 0,
                "maximum": 999,
                "x-parser-schema-id": "<anonymous-schema-75>"
              },
              "source": {
                "description": "The generator, an injection, or the walk out at closing",
                "enum": [
                  "closing",
                  "injected",
                  "simulated"
                ],
                "x-parser-schema-id": "<anonymous-schema-76>"
              },
              "tick": {
                "description": "The producer's tick that published it",
                "type": "integer",
                "minimum": 0,
                "x-parser-schema-id": "<anonymous-schema-77>"
              },
              "backlog": {
                "description": "Due events still waiting at that tick",
                "type": "integer",
                "minimum": 0,
                "x-parser-schema-id": "<anonymous-schema-78>"
              },
              "lateness_ms": {
                "description": "How late it was published after its time, ms",
                "type": "number",
                "minimum": 0,
                "x-parser-schema-id": "<anonymous-schema-79>"
              },
              "published_at": {
                "format": "date-time",
                "description": "When the producer published it",
                "type": "string",
                "x-parser-schema-id": "<anonymous-schema-80>"
              },
              "type": {
                "enum": [
                  "enter"
                ],
                "default": "enter",
                "x-parser-schema-id": "<anonymous-schema-81>"
              }
            },
            "required": [
              "event_id",
              "run_id",
              "seq",
              "id",
              "ts",
              "x",
              "y",
              "source",
              "tick",
              "backlog",
              "lateness_ms",
              "published_at"
            ],
            "additionalProperties": false,
            "x-parser-schema-id": "RetailEnter"
          },
          "bindings": {
            "kafka": {
              "key": {
                "type": "string",
                "description": "The customer id: its records stay in order."
              },
              "bindingVersion": "0.5.0"
            }
          },
          "examples": [
            {
              "name": "enter",
              "summary": "A customer enters",
              "payload": {
                "event_id": "3c5e0a9b7d21-0",
                "run_id": "3c5e0a9b7d21",
                "seq": 0,
                "id": "6",
                "ts": 1736928054.651,
                "x": 3,
                "y": 0,
                "source": "simulated",
                "tick": 0,
                "backlog": 0,
                "lateness_ms": 3.999948501586914,
                "published_at": "2025-01-15T09:30:03Z",
                "type": "enter"
              }
            }
          ],
          "x-parser-unique-object-id": "RetailEnter"
        }
      },
      "bindings": {
        "kafka": {
          "topic": "herald.retail.enter",
          "partitions": 12,
          "replicas": 1,
          "bindingVersion": "0.5.0"
        }
      },
      "x-parser-unique-object-id": "retailEnter"
    },
    "retailMove": {
      "address": "herald.retail.move",
      "title": "herald.retail.move",
      "description": "Customers moving to an adjacent cell (facts; `retail.move_topic`). Key: customer id. Partitions: `kafka.partitions` (12 by default); replication factor: `kafka.replication_factor` (1 by default, 3 on a cluster).",
      "tags": [
        {
          "name": "facts"
        }
      ],
      "messages": {
        "RetailMove": {
          "name": "RetailMove",
          "title": "RetailMove",
          "summary": "A customer inside moves to an adjacent cell.",
          "contentType": "application/json",
          "payload": {
            "title": "RetailMove",
            "description": "A customer inside moves to an adjacent cell.",
            "type": "object",
            "properties": {
              "event_id": {
                "description": "herald's event id, `{run_id}-{seq}`",
                "type": "string",
                "pattern": "^[A-Za-z0-9_:.-]{1,128}$",
                "x-parser-schema-id": "<anonymous-schema-82>"
              },
              "run_id": {
                "description": "Run id",
                "type": "string",
                "pattern": "^[A-Za-z0-9_-]{1,64}$",
                "x-parser-schema-id": "<anonymous-schema-83>"
              },
              "seq": {
                "description": "The event's place on the run's timeline",
                "type": "integer",
                "minimum": 0,
                "x-parser-schema-id": "<anonymous-schema-84>"
              },
              "id": {
                "description": "The customer; the record key",
                "examples": [
                  "997"
                ],
                "type": "string",
                "pattern": "^[A-Za-z0-9_.:-]{1,64}$",
                "x-parser-schema-id": "<anonymous-schema-85>"
              },
              "ts": {
                "description": "Event time, epoch seconds (simulated), to the millisecond",
                "type": "number",
                "minimum": 0,
                "x-parser-schema-id": "<anonymous-schema-86>"
              },
              "x": {
                "description": "Column of the cell, from 0",
                "type": "integer",
                "minimum": 0,
                "maximum": 999,
                "x-parser-schema-id": "<anonymous-schema-87>"
              },
              "y": {
                "description": "Row of the cell, from 0 (the front wall)",
                "type": "integer",
                "minimum": 0,
                "maximum": 999,
                "x-parser-schema-id": "<anonymous-schema-88>"
              },
              "source": {
                "description": "The generator, an injection, or the walk out at closing",
                "enum": [
                  "closing",
                  "injected",
                  "simulated"
                ],
                "x-parser-schema-id": "<anonymous-schema-89>"
              },
              "tick": {
                "description": "The producer's tick that published it",
                "type": "integer",
                "minimum": 0,
                "x-parser-schema-id": "<anonymous-schema-90>"
              },
              "backlog": {
                "description": "Due events still waiting at that tick",
                "type": "integer",
                "minimum": 0,
                "x-parser-schema-id": "<anonymous-schema-91>"
              },
              "lateness_ms": {
                "description": "How late it was published after its time, ms",
                "type": "number",
                "minimum": 0,
                "x-parser-schema-id": "<anonymous-schema-92>"
              },
              "published_at": {
                "format": "date-time",
                "description": "When the producer published it",
                "type": "string",
                "x-parser-schema-id": "<anonymous-schema-93>"
              },
              "type": {
                "enum": [
                  "move"
                ],
                "default": "move",
                "x-parser-schema-id": "<anonymous-schema-94>"
              }
            },
            "required": [
              "event_id",
              "run_id",
              "seq",
              "id",
              "ts",
              "x",
              "y",
              "source",
              "tick",
              "backlog",
              "lateness_ms",
              "published_at"
            ],
            "additionalProperties": false,
            "x-parser-schema-id": "RetailMove"
          },
          "bindings": {
            "kafka": {
              "key": {
                "type": "string",
                "description": "The customer id: its records stay in order."
              },
              "bindingVersion": "0.5.0"
            }
          },
          "examples": [
            {
              "name": "move",
              "summary": "A customer moves to an adjacent cell",
              "payload": {
                "event_id": "3c5e0a9b7d21-1",
                "run_id": "3c5e0a9b7d21",
                "seq": 1,
                "id": "6",
                "ts": 1736928055.949,
                "x": 4,
                "y": 0,
                "source": "simulated",
                "tick": 0,
                "backlog": 0,
                "lateness_ms": 3.999948501586914,
                "published_at": "2025-01-15T09:30:03Z",
                "type": "move"
              }
            }
          ],
          "x-parser-unique-object-id": "RetailMove"
        }
      },
      "bindings": {
        "kafka": {
          "topic": "herald.retail.move",
          "partitions": 12,
          "replicas": 1,
          "bindingVersion": "0.5.0"
        }
      },
      "x-parser-unique-object-id": "retailMove"
    },
    "retailExit": {
      "address": "herald.retail.exit",
      "title": "herald.retail.exit",
      "description": "Customers leaving the store (facts; `retail.exit_topic`). Key: customer id. Partitions: `kafka.partitions` (12 by default); replication factor: `kafka.replication_factor` (1 by default, 3 on a cluster).",
      "tags": [
        {
          "name": "facts"
        }
      ],
      "messages": {
        "RetailExit": {
          "name": "RetailExit",
          "title": "RetailExit",
          "summary": "A customer leaves the store, through its entrance.",
          "contentType": "application/json",
          "payload": {
            "title": "RetailExit",
            "description": "A customer leaves the store, through its entrance.",
            "type": "object",
            "properties": {
              "event_id": {
                "description": "herald's event id, `{run_id}-{seq}`",
                "type": "string",
                "pattern": "^[A-Za-z0-9_:.-]{1,128}$",
                "x-parser-schema-id": "<anonymous-schema-95>"
              },
              "run_id": {
                "description": "Run id",
                "type": "string",
                "pattern": "^[A-Za-z0-9_-]{1,64}$",
                "x-parser-schema-id": "<anonymous-schema-96>"
              },
              "seq": {
                "description": "The event's place on the run's timeline",
                "type": "integer",
                "minimum": 0,
                "x-parser-schema-id": "<anonymous-schema-97>"
              },
              "id": {
                "description": "The customer; the record key",
                "examples": [
                  "997"
                ],
                "type": "string",
                "pattern": "^[A-Za-z0-9_.:-]{1,64}$",
                "x-parser-schema-id": "<anonymous-schema-98>"
              },
              "ts": {
                "description": "Event time, epoch seconds (simulated), to the millisecond",
                "type": "number",
                "minimum": 0,
                "x-parser-schema-id": "<anonymous-schema-99>"
              },
              "x": {
                "description": "Column of the cell, from 0",
                "type": "integer",
                "minimum": 0,
                "maximum": 999,
                "x-parser-schema-id": "<anonymous-schema-100>"
              },
              "y": {
                "description": "Row of the cell, from 0 (the front wall)",
                "type": "integer",
                "minimum": 0,
                "maximum": 999,
                "x-parser-schema-id": "<anonymous-schema-101>"
              },
              "source": {
                "description": "The generator, an injection, or the walk out at closing",
                "enum": [
                  "closing",
                  "injected",
                  "simulated"
                ],
                "x-parser-schema-id": "<anonymous-schema-102>"
              },
              "tick": {
                "description": "The producer's tick that published it",
                "type": "integer",
                "minimum": 0,
                "x-parser-schema-id": "<anonymous-schema-103>"
              },
              "backlog": {
                "description": "Due events still waiting at that tick",
                "type": "integer",
                "minimum": 0,
                "x-parser-schema-id": "<anonymous-schema-104>"
              },
              "lateness_ms": {
                "description": "How late it was published after its time, ms",
                "type": "number",
                "minimum": 0,
                "x-parser-schema-id": "<anonymous-schema-105>"
              },
              "published_at": {
                "format": "date-time",
                "description": "When the producer published it",
                "type": "string",
                "x-parser-schema-id": "<anonymous-schema-106>"
              },
              "type": {
                "enum": [
                  "exit"
                ],
                "default": "exit",
                "x-parser-schema-id": "<anonymous-schema-107>"
              }
            },
            "required": [
              "event_id",
              "run_id",
              "seq",
              "id",
              "ts",
              "x",
              "y",
              "source",
              "tick",
              "backlog",
              "lateness_ms",
              "published_at"
            ],
            "additionalProperties": false,
            "x-parser-schema-id": "RetailExit"
          },
          "bindings": {
            "kafka": {
              "key": {
                "type": "string",
                "description": "The customer id: its records stay in order."
              },
              "bindingVersion": "0.5.0"
            }
          },
          "examples": [
            {
              "name": "exit",
              "summary": "A customer leaves",
              "payload": {
                "event_id": "3c5e0a9b7d21-65",
                "run_id": "3c5e0a9b7d21",
                "seq": 65,
                "id": "2",
                "ts": 1736928369.691,
                "x": 3,
                "y": 0,
                "source": "simulated",
                "tick": 2,
                "backlog": 0,
                "lateness_ms": 3.999948501586914,
                "published_at": "2025-01-15T09:30:03Z",
                "type": "exit"
              }
            }
          ],
          "x-parser-unique-object-id": "RetailExit"
        }
      },
      "bindings": {
        "kafka": {
          "topic": "herald.retail.exit",
          "partitions": 12,
          "replicas": 1,
          "bindingVersion": "0.5.0"
        }
      },
      "x-parser-unique-object-id": "retailExit"
    },
    "retailInjections": {
      "address": "herald.retail.injections",
      "title": "herald.retail.injections",
      "description": "Events injected over HTTP into a run's timeline, in order per run (control). Key: run id. Partitions: `kafka.partitions` (12 by default); replication factor: `kafka.replication_factor` (1 by default, 3 on a cluster).",
      "tags": [
        {
          "name": "control"
        }
      ],
      "messages": {
        "RetailInjection": {
          "name": "RetailInjection",
          "title": "RetailInjection",
          "summary": "One event injected into a run's timeline (journaled, so a replay has it too).",
          "contentType": "application/json",
          "payload": {
            "title": "RetailInjection",
            "description": "One event injected into a run's timeline (journaled, so a replay has it too).",
            "type": "object",
            "properties": {
              "injection_id": {
                "description": "Chosen by the web",
                "type": "string",
                "pattern": "^[0-9a-f]{32}$",
                "x-parser-schema-id": "<anonymous-schema-108>"
              },
              "run_id": {
                "description": "Run id",
                "type": "string",
                "pattern": "^[A-Za-z0-9_-]{1,64}$",
                "x-parser-schema-id": "<anonymous-schema-109>"
              },
              "number": {
                "description": "Its order among the run's injections",
                "type": "integer",
                "minimum": 1,
                "x-parser-schema-id": "<anonymous-schema-110>"
              },
              "type": {
                "enum": [
                  "enter",
                  "exit",
                  "move"
                ],
                "x-parser-schema-id": "<anonymous-schema-111>"
              },
              "id": {
                "description": "A customer of the injections' own",
                "examples": [
                  "997"
                ],
                "type": "string",
                "pattern": "^[A-Za-z0-9_.:-]{1,64}$",
                "x-parser-schema-id": "<anonymous-schema-112>"
              },
              "ts": {
                "description": "Event time, epoch seconds (simulated), to the millisecond",
                "type": "number",
                "minimum": 0,
                "x-parser-schema-id": "<anonymous-schema-113>"
              },
              "x": {
                "type": "integer",
                "minimum": 0,
                "maximum": 999,
                "x-parser-schema-id": "<anonymous-schema-114>"
              },
              "y": {
                "type": "integer",
                "minimum": 0,
                "maximum": 999,
                "x-parser-schema-id": "<anonymous-schema-115>"
              },
              "requested_at": {
                "format": "date-time",
                "type": "string",
                "x-parser-schema-id": "<anonymous-schema-116>"
              }
            },
            "required": [
              "injection_id",
              "run_id",
              "number",
              "type",
              "id",
              "ts",
              "x",
              "y",
              "requested_at"
            ],
            "additionalProperties": false,
            "x-parser-schema-id": "RetailInjection"
          },
          "bindings": {
            "kafka": {
              "key": {
                "description": "The run id (`run_id`): a run's records stay in order.",
                "type": "string",
                "pattern": "^[A-Za-z0-9_-]{1,64}$"
              },
              "bindingVersion": "0.5.0"
            }
          },
          "examples": [
            {
              "name": "inject-enter",
              "summary": "Customer 997 is injected",
              "payload": {
                "injection_id": "5f1d3b9a0c2e4d6f8a1b3c5d7e9f0a2b",
                "run_id": "3c5e0a9b7d21",
                "number": 1,
                "type": "enter",
                "id": "997",
                "ts": 1736934300,
                "x": 3,
                "y": 0,
                "requested_at": "2025-01-15T09:30:00Z"
              }
            }
          ],
          "x-parser-unique-object-id": "RetailInjection"
        }
      },
      "bindings": {
        "kafka": {
          "topic": "herald.retail.injections",
          "partitions": 12,
          "replicas": 1,
          "bindingVersion": "0.5.0"
        }
      },
      "x-parser-unique-object-id": "retailInjections"
    },
    "smsOutbound": {
      "address": "herald.sms.outbound",
      "title": "herald.sms.outbound",
      "description": "SMS messages waiting to be sent (work). Key: message id. Partitions: `kafka.partitions` (12 by default); replication factor: `kafka.replication_factor` (1 by default, 3 on a cluster).",
      "tags": [
        {
          "name": "work"
        }
      ],
      "messages": {
        "SmsMessage": {
          "name": "SmsMessage",
          "title": "SmsMessage",
          "summary": "One SMS to deliver.",
          "contentType": "application/json",
          "payload": {
            "title": "SmsMessage",
            "description": "One SMS to deliver.",
            "type": "object",
            "properties": {
              "id": {
                "description": "Stable message id: `{run_id}-{seq}`; the key",
                "type": "string",
                "pattern": "^[A-Za-z0-9_:.-]{1,128}$",
                "x-parser-schema-id": "<anonymous-schema-117>"
              },
              "run_id": {
                "description": "Run id",
                "type": "string",
                "pattern": "^[A-Za-z0-9_-]{1,64}$",
                "x-parser-schema-id": "<anonymous-schema-118>"
              },
              "seq": {
                "description": "The message's position in its run, from 0",
                "type": "integer",
                "minimum": 0,
                "x-parser-schema-id": "<anonymous-schema-119>"
              },
              "phone": {
                "description": "E.164 phone number",
                "examples": [
                  "+14155550123"
                ],
                "type": "string",
                "pattern": "^\\+[1-9][0-9]{7,14}$",
                "x-parser-schema-id": "<anonymous-schema-120>"
              },
              "text": {
                "description": "SMS body, 1-100 chars",
                "type": "string",
                "maxLength": 100,
                "minLength": 1,
                "x-parser-schema-id": "<anonymous-schema-121>"
              },
              "created_at": {
                "format": "date-time",
                "description": "When the producer created the message",
                "type": "string",
                "x-parser-schema-id": "<anonymous-schema-122>"
              }
            },
            "required": [
              "id",
              "run_id",
              "seq",
              "phone",
              "text",
              "created_at"
            ],
            "additionalProperties": false,
            "x-parser-schema-id": "SmsMessage"
          },
          "bindings": {
            "kafka": {
              "key": {
                "description": "The message id (`id` of a message, `message_id` of a result).",
                "type": "string",
                "pattern": "^[A-Za-z0-9_:.-]{1,128}$"
              },
              "bindingVersion": "0.5.0"
            }
          },
          "examples": [
            {
              "name": "message",
              "summary": "Message 0 of a run",
              "payload": {
                "id": "7f3a9c2e41b0-0",
                "run_id": "7f3a9c2e41b0",
                "seq": 0,
                "phone": "+811732430299",
                "text": "YtIunxu  -B 8J5E Ms v  D?mgoB UyMX1gPBonO !0V )Bn Hv -VefsRwKewhVgkmVA.s6C7q- FunxfkK",
                "created_at": "2025-01-15T09:30:00.500000Z"
              }
            }
          ],
          "x-parser-unique-object-id": "SmsMessage"
        }
      },
      "bindings": {
        "kafka": {
          "topic": "herald.sms.outbound",
          "partitions": 12,
          "replicas": 1,
          "bindingVersion": "0.5.0"
        }
      },
      "x-parser-unique-object-id": "smsOutbound"
    },
    "smsResults": {
      "address": "herald.sms.results",
      "title": "herald.sms.results",
      "description": "One delivery outcome per message (facts). Key: message id. Partitions: `kafka.partitions` (12 by default); replication factor: `kafka.replication_factor` (1 by default, 3 on a cluster).",
      "tags": [
        {
          "name": "facts"
        }
      ],
      "messages": {
        "SmsResult": {
          "name": "SmsResult",
          "title": "SmsResult",
          "summary": "The outcome of delivering one SMS: exactly one per message.",
          "contentType": "application/json",
          "payload": {
            "title": "SmsResult",
            "description": "The outcome of delivering one SMS: exactly one per message.",
            "type": "object",
            "properties": {
              "message_id": {
                "description": "The message's id; the record key",
                "type": "string",
                "pattern": "^[A-Za-z0-9_:.-]{1,128}$",
                "x-parser-schema-id": "<anonymous-schema-123>"
              },
              "run_id": {
                "description": "Run id",
                "type": "string",
                "pattern": "^[A-Za-z0-9_-]{1,64}$",
                "x-parser-schema-id": "<anonymous-schema-124>"
              },
              "seq": {
                "description": "The message's position in its run",
                "type": "integer",
                "minimum": 0,
                "x-parser-schema-id": "<anonymous-schema-125>"
              },
              "sender_id": {
                "description": "Sender index",
                "type": "integer",
                "minimum": 0,
                "maximum": 1000000,
                "x-parser-schema-id": "<anonymous-schema-126>"
              },
              "status": {
                "description": "`sent`, or `failed` after the last attempt",
                "enum": [
                  "failed",
                  "sent"
                ],
                "x-parser-schema-id": "<anonymous-schema-127>"
              },
              "latency_ms": {
                "description": "Simulated send time, all attempts and backoff included",
                "type": "number",
                "minimum": 0,
                "x-parser-schema-id": "<anonymous-schema-128>"
              },
              "attempts": {
                "description": "Send attempts made (1 = no retry)",
                "type": "integer",
                "minimum": 1,
                "x-parser-schema-id": "<anonymous-schema-129>"
              },
              "created_at": {
                "format": "date-time",
                "description": "When the producer created the message",
                "type": "string",
                "x-parser-schema-id": "<anonymous-schema-130>"
              },
              "received_at": {
                "format": "date-time",
                "description": "When the sender took the message",
                "type": "string",
                "x-parser-schema-id": "<anonymous-schema-131>"
              },
              "completed_at": {
                "format": "date-time",
                "description": "When the send completed or failed",
                "type": "string",
                "x-parser-schema-id": "<anonymous-schema-132>"
              },
              "failure_reason": {
                "description": "Why the send failed; null when sent",
                "anyOf": [
                  {
                    "type": "string",
                    "x-parser-schema-id": "<anonymous-schema-134>"
                  },
                  {
                    "type": "null",
                    "x-parser-schema-id": "<anonymous-schema-135>"
                  }
                ],
                "default": null,
                "x-parser-schema-id": "<anonymous-schema-133>"
              }
            },
            "required": [
              "message_id",
              "run_id",
              "seq",
              "sender_id",
              "status",
              "latency_ms",
              "attempts",
              "created_at",
              "received_at",
              "completed_at"
            ],
            "additionalProperties": false,
            "x-parser-schema-id": "SmsResult"
          },
          "bindings": {
            "kafka": {
              "key": {
                "description": "The message id (`id` of a message, `message_id` of a result).",
                "type": "string",
                "pattern": "^[A-Za-z0-9_:.-]{1,128}$"
              },
              "bindingVersion": "0.5.0"
            }
          },
          "examples": [
            {
              "name": "sent",
              "summary": "Delivered at the first attempt",
              "payload": {
                "message_id": "7f3a9c2e41b0-0",
                "run_id": "7f3a9c2e41b0",
                "seq": 0,
                "sender_id": 2,
                "status": "sent",
                "latency_ms": 84.25,
                "attempts": 1,
                "created_at": "2025-01-15T09:30:00.500000Z",
                "received_at": "2025-01-15T09:30:00.700000Z",
                "completed_at": "2025-01-15T09:30:00.784250Z",
                "failure_reason": null
              }
            },
            {
              "name": "failed",
              "summary": "Failed after three attempts",
              "payload": {
                "message_id": "7f3a9c2e41b0-1",
                "run_id": "7f3a9c2e41b0",
                "seq": 1,
                "sender_id": 2,
                "status": "failed",
                "latency_ms": 312.5,
                "attempts": 3,
                "created_at": "2025-01-15T09:30:00.500000Z",
                "received_at": "2025-01-15T09:30:00.700000Z",
                "completed_at": "2025-01-15T09:30:01.012500Z",
                "failure_reason": "carrier rejected"
              }
            }
          ],
          "x-parser-unique-object-id": "SmsResult"
        }
      },
      "bindings": {
        "kafka": {
          "topic": "herald.sms.results",
          "partitions": 12,
          "replicas": 1,
          "bindingVersion": "0.5.0"
        }
      },
      "x-parser-unique-object-id": "smsResults"
    },
    "telemetryCommands": {
      "address": "herald.telemetry.commands",
      "title": "herald.telemetry.commands",
      "description": "Start and stop commands of telemetry streams: the scheduler's at a schedule's start, the API's to stop one (work). Key: schedule id. Partitions: `kafka.partitions` (12 by default); replication factor: `kafka.replication_factor` (1 by default, 3 on a cluster).",
      "tags": [
        {
          "name": "work"
        }
      ],
      "messages": {
        "StreamCommand": {
          "name": "StreamCommand",
          "title": "StreamCommand",
          "summary": "Start a stream (the scheduler, at its ``start_at``) or stop one (the API's DELETE).",
          "contentType": "application/json",
          "payload": {
            "title": "StreamCommand",
            "description": "Start a stream (the scheduler, at its ``start_at``) or stop one (the API's DELETE).",
            "type": "object",
            "properties": {
              "action": {
                "enum": [
                  "start",
                  "stop"
                ],
                "x-parser-schema-id": "<anonymous-schema-136>"
              },
              "schedule_id": {
                "description": "Schedule id",
                "type": "string",
                "pattern": "^[0-9a-f]{32}$",
                "x-parser-schema-id": "<anonymous-schema-137>"
              },
              "ship": {
                "description": "The ship's name",
                "examples": [
                  "voyager-1"
                ],
                "type": "string",
                "pattern": "^[A-Za-z][A-Za-z0-9_-]{0,31}$",
                "x-parser-schema-id": "<anonymous-schema-138>"
              },
              "host": {
                "description": "Host name or address",
                "type": "string",
                "maxLength": 253,
                "minLength": 1,
                "x-parser-schema-id": "<anonymous-schema-139>"
              },
              "port": {
                "type": "integer",
                "minimum": 1,
                "maximum": 65535,
                "x-parser-schema-id": "<anonymous-schema-140>"
              },
              "rate_hz": {
                "description": "Samples a second",
                "type": "number",
                "exclusiveMinimum": 0,
                "maximum": 100000,
                "x-parser-schema-id": "<anonymous-schema-141>"
              },
              "duration_s": {
                "description": "Seconds of streaming",
                "type": "number",
                "exclusiveMinimum": 0,
                "maximum": 604800,
                "x-parser-schema-id": "<anonymous-schema-142>"
              },
              "start_at": {
                "format": "date-time",
                "description": "When the first sample is due",
                "type": "string",
                "x-parser-schema-id": "<anonymous-schema-143>"
              },
              "loss": {
                "description": "Fraction of datagrams dropped before sending",
                "type": "number",
                "minimum": 0,
                "exclusiveMaximum": 1,
                "default": 0,
                "x-parser-schema-id": "<anonymous-schema-144>"
              },
              "seed": {
                "description": "The battery model's seed",
                "type": "integer",
                "minimum": 0,
                "default": 0,
                "x-parser-schema-id": "<anonymous-schema-145>"
              },
              "run_id": {
                "anyOf": [
                  {
                    "description": "Run id",
                    "type": "string",
                    "pattern": "^[A-Za-z0-9_-]{1,64}$",
                    "x-parser-schema-id": "<anonymous-schema-147>"
                  },
                  {
                    "type": "null",
                    "x-parser-schema-id": "<anonymous-schema-148>"
                  }
                ],
                "default": null,
                "x-parser-schema-id": "<anonymous-schema-146>"
              }
            },
            "required": [
              "action",
              "schedule_id",
              "ship",
              "host",
              "port",
              "rate_hz",
              "duration_s",
              "start_at"
            ],
            "additionalProperties": false,
            "x-parser-schema-id": "StreamCommand"
          },
          "bindings": {
            "kafka": {
              "key": {
                "type": "string",
                "description": "The schedule id: its records stay in order."
              },
              "bindingVersion": "0.5.0"
            }
          },
          "examples": [
            {
              "name": "start",
              "summary": "Start voyager-1's stream",
              "payload": {
                "action": "start",
                "schedule_id": "5e0c7a1d9b3f4e2a8c6d0f1b3a5c7e9d",
                "ship": "voyager-1",
                "host": "127.0.0.1",
                "port": 47100,
                "rate_hz": 20,
                "duration_s": 30,
                "start_at": "2026-12-01T09:00:00Z",
                "loss": 0,
                "seed": 7,
                "run_id": null
              }
            }
          ],
          "x-parser-unique-object-id": "StreamCommand"
        }
      },
      "bindings": {
        "kafka": {
          "topic": "herald.telemetry.commands",
          "partitions": 12,
          "replicas": 1,
          "bindingVersion": "0.5.0"
        }
      },
      "x-parser-unique-object-id": "telemetryCommands"
    },
    "telemetryStreams": {
      "address": "herald.telemetry.streams",
      "title": "herald.telemetry.streams",
      "description": "Each telemetry stream's start, progress, hand-offs and end, with the packets each spaceship sent of it (facts). Key: schedule id. Partitions: `kafka.partitions` (12 by default); replication factor: `kafka.replication_factor` (1 by default, 3 on a cluster).",
      "tags": [
        {
          "name": "facts"
        }
      ],
      "messages": {
        "StreamEvent": {
          "name": "StreamEvent",
          "title": "StreamEvent",
          "summary": "A spaceship's account of one segment of a stream (the packets one spaceship sent of",
          "contentType": "application/json",
          "payload": {
            "title": "StreamEvent",
            "description": "A spaceship's account of one segment of a stream (the packets one spaceship sent of\n    it, from ``first_k`` on): it started, how far it got (``progress``), it gave the stream\n    up in a rebalance (``handed_off``: the next owner resumes it), or the stream ended.",
            "type": "object",
            "properties": {
              "schedule_id": {
                "description": "Schedule id",
                "type": "string",
                "pattern": "^[0-9a-f]{32}$",
                "x-parser-schema-id": "<anonymous-schema-149>"
              },
              "ship": {
                "description": "The ship's name",
                "examples": [
                  "voyager-1"
                ],
                "type": "string",
                "pattern": "^[A-Za-z][A-Za-z0-9_-]{0,31}$",
                "x-parser-schema-id": "<anonymous-schema-150>"
              },
              "event": {
                "enum": [
                  "failed",
                  "finished",
                  "handed_off",
                  "progress",
                  "started",
                  "stopped"
                ],
                "x-parser-schema-id": "<anonymous-schema-151>"
              },
              "packets_sent": {
                "description": "Datagrams sent so far in this segment",
                "type": "integer",
                "minimum": 0,
                "default": 0,
                "x-parser-schema-id": "<anonymous-schema-152>"
              },
              "dropped": {
                "description": "Datagrams dropped on purpose (loss) in this segment",
                "type": "integer",
                "minimum": 0,
                "default": 0,
                "x-parser-schema-id": "<anonymous-schema-153>"
              },
              "first_k": {
                "description": "The segment's first packet: 0 for the stream's start; for a stream resumed after a hand-off or a crash, the first packet still due then (those before it that no one sent are counted as missed)",
                "type": "integer",
                "minimum": 0,
                "default": 0,
                "x-parser-schema-id": "<anonymous-schema-154>"
              },
              "spaceship": {
                "description": "The instance streaming it",
                "type": "string",
                "maxLength": 255,
                "x-parser-schema-id": "<anonymous-schema-155>"
              },
              "at": {
                "format": "date-time",
                "type": "string",
                "x-parser-schema-id": "<anonymous-schema-156>"
              },
              "reason": {
                "anyOf": [
                  {
                    "type": "string",
                    "maxLength": 500,
                    "x-parser-schema-id": "<anonymous-schema-158>"
                  },
                  {
                    "type": "null",
                    "x-parser-schema-id": "<anonymous-schema-159>"
                  }
                ],
                "default": null,
                "x-parser-schema-id": "<anonymous-schema-157>"
              }
            },
            "required": [
              "schedule_id",
              "ship",
              "event",
              "spaceship",
              "at"
            ],
            "additionalProperties": false,
            "x-parser-schema-id": "StreamEvent"
          },
          "bindings": {
            "kafka": {
              "key": {
                "type": "string",
                "description": "The schedule id: its records stay in order."
              },
              "bindingVersion": "0.5.0"
            }
          },
          "examples": [
            {
              "name": "finished",
              "summary": "A stream ended",
              "payload": {
                "schedule_id": "5e0c7a1d9b3f4e2a8c6d0f1b3a5c7e9d",
                "ship": "voyager-1",
                "event": "finished",
                "packets_sent": 600,
                "dropped": 0,
                "first_k": 0,
                "spaceship": "spaceship@ground-1:4702",
                "at": "2026-12-01T09:00:30Z",
                "reason": null
              }
            }
          ],
          "x-parser-unique-object-id": "StreamEvent"
        }
      },
      "bindings": {
        "kafka": {
          "topic": "herald.telemetry.streams",
          "partitions": 12,
          "replicas": 1,
          "bindingVersion": "0.5.0"
        }
      },
      "x-parser-unique-object-id": "telemetryStreams"
    },
    "telemetryFrames": {
      "address": "herald.telemetry.frames",
      "title": "herald.telemetry.frames",
      "description": "Telemetry frames as the ingestors received them, keyed by ship (facts). Key: ship. Partitions: `kafka.partitions` (12 by default); replication factor: `kafka.replication_factor` (1 by default, 3 on a cluster).",
      "tags": [
        {
          "name": "facts"
        }
      ],
      "messages": {
        "TelemetryFrame": {
          "name": "TelemetryFrame",
          "title": "TelemetryFrame",
          "summary": "One datagram as the ingestor received it: the packet's header and sample, its place",
          "contentType": "application/json",
          "payload": {
            "title": "TelemetryFrame",
            "description": "One datagram as the ingestor received it: the packet's header and sample, its place\n    in the stream, and where and when it came from.",
            "type": "object",
            "properties": {
              "id": {
                "description": "Stable message id",
                "type": "string",
                "pattern": "^[A-Za-z0-9_:.-]{1,128}$",
                "x-parser-schema-id": "<anonymous-schema-160>"
              },
              "schedule_id": {
                "description": "Schedule id",
                "type": "string",
                "pattern": "^[0-9a-f]{32}$",
                "x-parser-schema-id": "<anonymous-schema-161>"
              },
              "ship": {
                "description": "The ship's name",
                "examples": [
                  "voyager-1"
                ],
                "type": "string",
                "pattern": "^[A-Za-z][A-Za-z0-9_-]{0,31}$",
                "x-parser-schema-id": "<anonymous-schema-162>"
              },
              "apid": {
                "description": "The packet's APID (the ship's)",
                "type": "integer",
                "minimum": 0,
                "maximum": 2047,
                "x-parser-schema-id": "<anonymous-schema-163>"
              },
              "seq": {
                "description": "The packet's 14-bit sequence count",
                "type": "integer",
                "minimum": 0,
                "maximum": 16383,
                "x-parser-schema-id": "<anonymous-schema-164>"
              },
              "n": {
                "description": "Its number in the stream, from 0 (seq unwrapped)",
                "type": "integer",
                "minimum": 0,
                "x-parser-schema-id": "<anonymous-schema-165>"
              },
              "t": {
                "description": "Sample time, epoch seconds",
                "type": "number",
                "minimum": 0,
                "x-parser-schema-id": "<anonymous-schema-166>"
              },
              "voltage": {
                "description": "Bus voltage, V",
                "type": "number",
                "x-parser-schema-id": "<anonymous-schema-167>"
              },
              "current": {
                "description": "Battery current, A (> 0: discharging)",
                "type": "number",
                "x-parser-schema-id": "<anonymous-schema-168>"
              },
              "temperature": {
                "description": "Battery temperature, °C",
                "type": "number",
                "x-parser-schema-id": "<anonymous-schema-169>"
              },
              "soc": {
                "description": "State of charge, 0 to 1",
                "type": "number",
                "minimum": 0,
                "maximum": 1,
                "x-parser-schema-id": "<anonymous-schema-170>"
              },
              "sunlit": {
                "type": "boolean",
                "x-parser-schema-id": "<anonymous-schema-171>"
              },
              "reordered": {
                "description": "It came after a later packet of its stream",
                "type": "boolean",
                "x-parser-schema-id": "<anonymous-schema-172>"
              },
              "sender": {
                "description": "host:port it came from",
                "type": "string",
                "maxLength": 300,
                "x-parser-schema-id": "<anonymous-schema-173>"
              },
              "ingestor": {
                "description": "The ingestor that took it",
                "type": "string",
                "maxLength": 255,
                "x-parser-schema-id": "<anonymous-schema-174>"
              },
              "received_at": {
                "format": "date-time",
                "type": "string",
                "x-parser-schema-id": "<anonymous-schema-175>"
              }
            },
            "required": [
              "id",
              "schedule_id",
              "ship",
              "apid",
              "seq",
              "n",
              "t",
              "voltage",
              "current",
              "temperature",
              "soc",
              "sunlit",
              "reordered",
              "sender",
              "ingestor",
              "received_at"
            ],
            "additionalProperties": false,
            "x-parser-schema-id": "TelemetryFrame"
          },
          "bindings": {
            "kafka": {
              "key": {
                "type": "string",
                "description": "The ship: its records stay in order."
              },
              "bindingVersion": "0.5.0"
            }
          },
          "examples": [
            {
              "name": "frame",
              "summary": "The stream's first frame",
              "payload": {
                "id": "5e0c7a1d9b3f4e2a8c6d0f1b3a5c7e9d:0",
                "schedule_id": "5e0c7a1d9b3f4e2a8c6d0f1b3a5c7e9d",
                "ship": "voyager-1",
                "apid": 1824,
                "seq": 0,
                "n": 0,
                "t": 1796115600,
                "voltage": 29.334,
                "current": 7.448,
                "temperature": 13.474,
                "soc": 0.794,
                "sunlit": false,
                "reordered": false,
                "sender": "127.0.0.1:52114",
                "ingestor": "ingestor@ground-1:4711",
                "received_at": "2026-12-01T09:00:00.002000Z"
              }
            }
          ],
          "x-parser-unique-object-id": "TelemetryFrame"
        }
      },
      "bindings": {
        "kafka": {
          "topic": "herald.telemetry.frames",
          "partitions": 12,
          "replicas": 1,
          "bindingVersion": "0.5.0"
        }
      },
      "x-parser-unique-object-id": "telemetryFrames"
    },
    "timersFire": {
      "address": "herald.timers.fire",
      "title": "herald.timers.fire",
      "description": "Webhook timers that are due, published by the scheduler at their due time (work). Key: timer id. Partitions: `kafka.partitions` (12 by default); replication factor: `kafka.replication_factor` (1 by default, 3 on a cluster).",
      "tags": [
        {
          "name": "work"
        }
      ],
      "messages": {
        "FireCommand": {
          "name": "FireCommand",
          "title": "FireCommand",
          "summary": "A webhook timer is due: the notifier delivers its callback.",
          "contentType": "application/json",
          "payload": {
            "title": "FireCommand",
            "description": "A webhook timer is due: the notifier delivers its callback.",
            "type": "object",
            "properties": {
              "timer_id": {
                "description": "Timer id",
                "type": "string",
                "pattern": "^[A-Za-z0-9_-]{1,64}$",
                "x-parser-schema-id": "<anonymous-schema-176>"
              },
              "url": {
                "description": "The callback URL",
                "type": "string",
                "maxLength": 2048,
                "minLength": 8,
                "x-parser-schema-id": "<anonymous-schema-177>"
              },
              "mode": {
                "description": "`at_least_once` or `at_most_once`",
                "enum": [
                  "at_least_once",
                  "at_most_once"
                ],
                "x-parser-schema-id": "<anonymous-schema-178>"
              },
              "due_at": {
                "format": "date-time",
                "description": "When it was due",
                "type": "string",
                "x-parser-schema-id": "<anonymous-schema-179>"
              },
              "not_after": {
                "description": "Never delivered after this",
                "anyOf": [
                  {
                    "format": "date-time",
                    "type": "string",
                    "x-parser-schema-id": "<anonymous-schema-181>"
                  },
                  {
                    "type": "null",
                    "x-parser-schema-id": "<anonymous-schema-182>"
                  }
                ],
                "default": null,
                "x-parser-schema-id": "<anonymous-schema-180>"
              },
              "fence": {
                "description": "The scheduler claim's fencing token: a notifier delivers only the command of the timer's latest claim",
                "type": "integer",
                "minimum": 1,
                "x-parser-schema-id": "<anonymous-schema-183>"
              }
            },
            "required": [
              "timer_id",
              "url",
              "mode",
              "due_at",
              "fence"
            ],
            "additionalProperties": false,
            "x-parser-schema-id": "FireCommand"
          },
          "bindings": {
            "kafka": {
              "key": {
                "type": "string",
                "description": "The timer id: its records stay in order."
              },
              "bindingVersion": "0.5.0"
            }
          },
          "examples": [
            {
              "name": "due",
              "summary": "A webhook timer is due: its first claim",
              "payload": {
                "timer_id": "3b1f0c9e-6f1d-4c55-9a57-2a5d4f1e8b70",
                "url": "https://hooks.example.com/timers",
                "mode": "at_least_once",
                "due_at": "2026-12-01T09:00:00Z",
                "not_after": null,
                "fence": 1
              }
            },
            {
              "name": "taken-over",
              "summary": "Fired by the replica that took over a dead one's claim, with a latest time",
              "payload": {
                "timer_id": "a6c2e0f4-1b7d-4e0a-8c3b-5d9f2e7a1c46",
                "url": "https://hooks.example.com/timers",
                "mode": "at_most_once",
                "due_at": "2026-12-01T09:00:00Z",
                "not_after": "2026-12-01T09:05:00Z",
                "fence": 2
              }
            }
          ],
          "x-parser-unique-object-id": "FireCommand"
        }
      },
      "bindings": {
        "kafka": {
          "topic": "herald.timers.fire",
          "partitions": 12,
          "replicas": 1,
          "bindingVersion": "0.5.0"
        }
      },
      "x-parser-unique-object-id": "timersFire"
    },
    "control": {
      "address": "herald.control",
      "title": "herald.control",
      "description": "Lifecycle of services and runs: started, ready, stopped, run produced, run completed, run figures (control). One partition, so that every reader sees the events in order. Key: the service instance, or the run id. Partitions: 1; replication factor: `kafka.replication_factor` (1 by default, 3 on a cluster).",
      "tags": [
        {
          "name": "control"
        }
      ],
      "messages": {
        "ControlEvent": {
          "name": "ControlEvent",
          "title": "ControlEvent",
          "summary": "A service's lifecycle, a run's completion, or a monitor's figures.",
          "contentType": "application/json",
          "payload": {
            "description": "One control event, by `type`.",
            "oneOf": [
              {
                "title": "ServiceEvent",
                "description": "A service instance's lifecycle: started, ready (holds its first partitions), stopped.",
                "type": "object",
                "properties": {
                  "type": {
                    "enum": [
                      "service"
                    ],
                    "x-parser-schema-id": "<anonymous-schema-184>"
                  },
                  "service": {
                    "description": "The service's name in the registry",
                    "type": "string",
                    "x-parser-schema-id": "<anonymous-schema-185>"
                  },
                  "instance": {
                    "description": "The instance: `sender-2`, `recorder`, ...",
                    "type": "string",
                    "x-parser-schema-id": "<anonymous-schema-186>"
                  },
                  "host": {
                    "description": "The host it runs on",
                    "type": "string",
                    "x-parser-schema-id": "<anonymous-schema-187>"
                  },
                  "pid": {
                    "description": "Its process id on that host",
                    "type": "integer",
                    "minimum": 1,
                    "x-parser-schema-id": "<anonymous-schema-188>"
                  },
                  "state": {
                    "enum": [
                      "ready",
                      "started",
                      "stopped"
                    ],
                    "x-parser-schema-id": "<anonymous-schema-189>"
                  },
                  "at": {
                    "format": "date-time",
                    "type": "string",
                    "x-parser-schema-id": "<anonymous-schema-190>"
                  },
                  "partitions": {
                    "description": "`topic[partition]`s it holds, when ready",
                    "type": "array",
                    "items": {
                      "type": "string",
                      "x-parser-schema-id": "<anonymous-schema-192>"
                    },
                    "default": [],
                    "x-parser-schema-id": "<anonymous-schema-191>"
                  },
                  "exit_code": {
                    "description": "Its exit code, when stopped",
                    "anyOf": [
                      {
                        "type": "integer",
                        "x-parser-schema-id": "<anonymous-schema-194>"
                      },
                      {
                        "type": "null",
                        "x-parser-schema-id": "<anonymous-schema-195>"
                      }
                    ],
                    "default": null,
                    "x-parser-schema-id": "<anonymous-schema-193>"
                  }
                },
                "required": [
                  "type",
                  "service",
                  "instance",
                  "host",
                  "pid",
                  "state",
                  "at"
                ],
                "x-parser-schema-id": "ServiceEvent"
              },
              {
                "title": "RunCompleted",
                "description": "A run's every outcome is stored: the recorder's committed totals, published once the\n    database transaction that completed the run has committed.",
                "type": "object",
                "properties": {
                  "type": {
                    "enum": [
                      "run-completed"
                    ],
                    "x-parser-schema-id": "<anonymous-schema-196>"
                  },
                  "run_id": {
                    "description": "Run id",
                    "type": "string",
                    "pattern": "^[A-Za-z0-9_-]{1,64}$",
                    "x-parser-schema-id": "<anonymous-schema-197>"
                  },
                  "scenario": {
                    "type": "string",
                    "x-parser-schema-id": "<anonymous-schema-198>"
                  },
                  "expected": {
                    "type": "integer",
                    "minimum": 0,
                    "x-parser-schema-id": "<anonymous-schema-199>"
                  },
                  "counts": {
                    "description": "Outcomes stored, by status",
                    "type": "object",
                    "additionalProperties": {
                      "type": "integer",
                      "x-parser-schema-id": "<anonymous-schema-201>"
                    },
                    "x-parser-schema-id": "<anonymous-schema-200>"
                  },
                  "at": {
                    "format": "date-time",
                    "type": "string",
                    "x-parser-schema-id": "<anonymous-schema-202>"
                  }
                },
                "required": [
                  "type",
                  "run_id",
                  "scenario",
                  "expected",
                  "counts",
                  "at"
                ],
                "x-parser-schema-id": "RunCompleted"
              },
              {
                "title": "RunProduced",
                "description": "The producer published every record of a run whose size was not known up front (a\n    timeline's): how many outcomes it yields, so that its completion can be judged. Published\n    after the records are acknowledged, again if the run is produced again.",
                "type": "object",
                "properties": {
                  "type": {
                    "enum": [
                      "run-produced"
                    ],
                    "x-parser-schema-id": "<anonymous-schema-203>"
                  },
                  "run_id": {
                    "description": "Run id",
                    "type": "string",
                    "pattern": "^[A-Za-z0-9_-]{1,64}$",
                    "x-parser-schema-id": "<anonymous-schema-204>"
                  },
                  "scenario": {
                    "type": "string",
                    "x-parser-schema-id": "<anonymous-schema-205>"
                  },
                  "produced": {
                    "description": "Records published: the run's outcomes",
                    "type": "integer",
                    "minimum": 0,
                    "x-parser-schema-id": "<anonymous-schema-206>"
                  },
                  "at": {
                    "format": "date-time",
                    "type": "string",
                    "x-parser-schema-id": "<anonymous-schema-207>"
                  }
                },
                "required": [
                  "type",
                  "run_id",
                  "scenario",
                  "produced",
                  "at"
                ],
                "x-parser-schema-id": "RunProduced"
              },
              {
                "title": "RunFigures",
                "description": "The monitor's figures for a run, once it has seen every result (or at shutdown).",
                "type": "object",
                "properties": {
                  "type": {
                    "enum": [
                      "run-figures"
                    ],
                    "x-parser-schema-id": "<anonymous-schema-208>"
                  },
                  "run_id": {
                    "description": "Run id",
                    "type": "string",
                    "pattern": "^[A-Za-z0-9_-]{1,64}$",
                    "x-parser-schema-id": "<anonymous-schema-209>"
                  },
                  "complete": {
                    "type": "boolean",
                    "x-parser-schema-id": "<anonymous-schema-210>"
                  },
                  "figures": {
                    "description": "The monitor's summary of the run",
                    "type": "object",
                    "x-parser-schema-id": "<anonymous-schema-211>"
                  },
                  "at": {
                    "format": "date-time",
                    "type": "string",
                    "x-parser-schema-id": "<anonymous-schema-212>"
                  }
                },
                "required": [
                  "type",
                  "run_id",
                  "complete",
                  "figures",
                  "at"
                ],
                "x-parser-schema-id": "RunFigures"
              }
            ],
            "discriminator": "type",
            "x-parser-schema-id": "ControlEvent"
          },
          "bindings": {
            "kafka": {
              "key": {
                "type": "string",
                "description": "The service instance, or the run id."
              },
              "bindingVersion": "0.5.0"
            }
          },
          "examples": [
            {
              "name": "ready",
              "summary": "A sender holds its first partitions",
              "payload": {
                "type": "service",
                "service": "sender",
                "instance": "sender-2",
                "host": "worker-1",
                "pid": 4242,
                "state": "ready",
                "at": "2025-01-15T09:30:00Z",
                "partitions": [
                  "herald.sms.outbound[4]",
                  "herald.sms.outbound[5]"
                ],
                "exit_code": null
              }
            },
            {
              "name": "run-completed",
              "summary": "The recorder stored the run's last outcome",
              "payload": {
                "type": "run-completed",
                "run_id": "7f3a9c2e41b0",
                "scenario": "sms",
                "expected": 10000,
                "counts": {
                  "failed": 982,
                  "sent": 9018
                },
                "at": "2025-01-15T09:30:03Z"
              }
            },
            {
              "name": "run-figures",
              "summary": "The monitor saw the run's last result",
              "payload": {
                "type": "run-figures",
                "run_id": "7f3a9c2e41b0",
                "complete": true,
                "figures": {
                  "total": 10000,
                  "sent": 9018,
                  "failed": 982,
                  "duplicates_ignored": 0
                },
                "at": "2025-01-15T09:30:03Z"
              }
            }
          ],
          "x-parser-unique-object-id": "ControlEvent"
        }
      },
      "bindings": {
        "kafka": {
          "topic": "herald.control",
          "partitions": 1,
          "replicas": 1,
          "bindingVersion": "0.5.0"
        }
      },
      "x-parser-unique-object-id": "control"
    },
    "dlq": {
      "address": "herald.dlq",
      "title": "herald.dlq",
      "description": "Records that could not be processed: the original bytes, with the reason and the source topic/partition/offset in headers. Key: the original key. Partitions: `kafka.partitions` (12 by default); replication factor: `kafka.replication_factor` (1 by default, 3 on a cluster).",
      "tags": [
        {
          "name": "dead letters"
        }
      ],
      "messages": {
        "DeadLetter": {
          "name": "DeadLetter",
          "title": "Dead letter",
          "summary": "Records that could not be processed: the original bytes, with the reason and the source topic/partition/offset in headers.",
          "contentType": "application/octet-stream",
          "headers": {
            "type": "object",
            "description": "Kafka record headers; each value is UTF-8 text.",
            "required": [
              "herald.dlq.reason",
              "herald.dlq.topic",
              "herald.dlq.partition",
              "herald.dlq.offset",
              "herald.dlq.service"
            ],
            "properties": {
              "herald.dlq.reason": {
                "type": "string",
                "maxLength": 1000,
                "description": "Why the record could not be processed (the decoder's error).",
                "x-parser-schema-id": "<anonymous-schema-214>"
              },
              "herald.dlq.topic": {
                "type": "string",
                "minLength": 1,
                "description": "The topic the record was read from.",
                "x-parser-schema-id": "<anonymous-schema-215>"
              },
              "herald.dlq.partition": {
                "type": "string",
                "pattern": "^[0-9]+$",
                "description": "Its partition.",
                "x-parser-schema-id": "<anonymous-schema-216>"
              },
              "herald.dlq.offset": {
                "type": "string",
                "pattern": "^[0-9]+$",
                "description": "Its offset.",
                "x-parser-schema-id": "<anonymous-schema-217>"
              },
              "herald.dlq.service": {
                "type": "string",
                "pattern": "^(ingestor|notifier|producer|recorder|sender-[0-9]+|spaceship)$",
                "description": "The service that dead-lettered it.",
                "x-parser-schema-id": "<anonymous-schema-218>"
              },
              "herald.dlq.sender": {
                "type": "string",
                "description": "A datagram's sender, `host:port` (the telemetry ingestor's dead letters; their topic is `udp:<port>`, their offset the datagram's number on that port).",
                "x-parser-schema-id": "<anonymous-schema-219>"
              }
            },
            "x-parser-schema-id": "<anonymous-schema-213>"
          },
          "payload": {
            "description": "The original record's value, byte for byte: possibly not JSON, possibly not UTF-8; cut to its first 900,000 bytes when longer.",
            "x-parser-schema-id": "<anonymous-schema-220>"
          },
          "bindings": {
            "kafka": {
              "key": {
                "description": "The original record's key, unchanged (may be absent)."
              },
              "bindingVersion": "0.5.0"
            }
          },
          "examples": [
            {
              "name": "missing-field",
              "summary": "A message a worker could not decode",
              "headers": {
                "herald.dlq.reason": "ValidationError: Object missing required field `id`",
                "herald.dlq.topic": "herald.sms.outbound",
                "herald.dlq.partition": "3",
                "herald.dlq.offset": "1041",
                "herald.dlq.service": "sender-0"
              },
              "payload": "{\"run_id\":\"7f3a9c2e41b0\",\"seq\":0,\"phone\":\"+811732430299\",\"text\":\"YtIunxu  -B 8J5E Ms v  D?mgoB UyMX1gPBonO !0V )Bn Hv -VefsRwKewhVgkmVA.s6C7q- FunxfkK\",\"created_at\":\"2025-01-15T09:30:00.500000Z\"}"
            }
          ],
          "x-parser-unique-object-id": "DeadLetter"
        }
      },
      "bindings": {
        "kafka": {
          "topic": "herald.dlq",
          "partitions": 12,
          "replicas": 1,
          "bindingVersion": "0.5.0"
        }
      },
      "x-parser-unique-object-id": "dlq"
    }
  },
  "operations": {
    "workSmsOutbound": {
      "action": "receive",
      "channel": "$ref:$.channels.smsOutbound",
      "title": "sender: receive herald.sms.outbound",
      "summary": "The senders process the messages, as one consumer group.",
      "description": "`read_committed`, cooperative-sticky assignment. Each message is consumed, its work simulated by the scenario's step, and its result produced in one Kafka transaction together with the consumed offset: exactly one result per message, even when a sender dies.",
      "messages": [
        "$ref:$.channels.smsOutbound.messages.SmsMessage"
      ],
      "bindings": {
        "kafka": {
          "groupId": {
            "type": "string",
            "enum": [
              "herald-senders"
            ],
            "description": "`{namespace}.herald-senders` under a namespace."
          },
          "bindingVersion": "0.5.0"
        }
      },
      "x-parser-unique-object-id": "workSmsOutbound"
    },
    "publishSmsResults": {
      "action": "send",
      "channel": "$ref:$.channels.smsResults",
      "title": "sender: send herald.sms.results",
      "summary": "Each sender publishes one result per message, in Kafka transactions.",
      "description": "One transactional producer per consumed partition, id `{group}:{topic}:p{partition}` (group `herald-senders`, topic `herald.sms.outbound`; both prefixed with `{namespace}.` under a namespace): whoever takes a partition over fences its previous owner. Results of a partition are released in offset order. Read them with `isolation.level=read_committed`, and count a message once by `run_id` and `seq`: a broker that shows aborted transactions' records (the embedded one does) may deliver a result twice.",
      "messages": [
        "$ref:$.channels.smsResults.messages.SmsResult"
      ],
      "x-parser-unique-object-id": "publishSmsResults"
    },
    "produceRun": {
      "action": "receive",
      "channel": "$ref:$.channels.runs",
      "title": "producer: receive herald.runs",
      "summary": "The producer turns each run request into its scenario's records.",
      "description": "Its offset is committed only after every record of the run is acknowledged, so a producer stopped mid-run leaves the request to the next one, which produces the same ids and content again (the seed is in the request). An invalid request goes to the dead-letter topic.",
      "messages": [
        "$ref:$.channels.runs.messages.RunRequest"
      ],
      "bindings": {
        "kafka": {
          "groupId": {
            "type": "string",
            "enum": [
              "herald-producers"
            ],
            "description": "`{namespace}.herald-producers` under a namespace."
          },
          "bindingVersion": "0.5.0"
        }
      },
      "x-parser-unique-object-id": "produceRun"
    },
    "produceSmsOutbound": {
      "action": "send",
      "channel": "$ref:$.channels.smsOutbound",
      "title": "producer: send herald.sms.outbound",
      "summary": "The producer publishes a run's records on `herald.sms.outbound`.",
      "description": "Idempotent producer, `acks=all`, keyed by message id: records spread over every partition.",
      "messages": [
        "$ref:$.channels.smsOutbound.messages.SmsMessage"
      ],
      "x-parser-unique-object-id": "produceSmsOutbound"
    },
    "produceRetailEnter": {
      "action": "send",
      "channel": "$ref:$.channels.retailEnter",
      "title": "producer: send herald.retail.enter",
      "summary": "The producer publishes a run's timeline on `herald.retail.enter`, as its clock makes the events due.",
      "description": "Every `consume_frequency` seconds the due events, at most `consume_batch_size` of them; idempotent producer, `acks=all`, keyed by customer id so that one key's events stay in order. Once every event is acknowledged, the producer announces the run's size on `herald.control` (`run-produced`).",
      "messages": [
        "$ref:$.channels.retailEnter.messages.RetailEnter"
      ],
      "x-parser-unique-object-id": "produceRetailEnter"
    },
    "produceRetailMove": {
      "action": "send",
      "channel": "$ref:$.channels.retailMove",
      "title": "producer: send herald.retail.move",
      "summary": "The producer publishes a run's timeline on `herald.retail.move`, as its clock makes the events due.",
      "description": "Every `consume_frequency` seconds the due events, at most `consume_batch_size` of them; idempotent producer, `acks=all`, keyed by customer id so that one key's events stay in order. Once every event is acknowledged, the producer announces the run's size on `herald.control` (`run-produced`).",
      "messages": [
        "$ref:$.channels.retailMove.messages.RetailMove"
      ],
      "x-parser-unique-object-id": "produceRetailMove"
    },
    "produceRetailExit": {
      "action": "send",
      "channel": "$ref:$.channels.retailExit",
      "title": "producer: send herald.retail.exit",
      "summary": "The producer publishes a run's timeline on `herald.retail.exit`, as its clock makes the events due.",
      "description": "Every `consume_frequency` seconds the due events, at most `consume_batch_size` of them; idempotent producer, `acks=all`, keyed by customer id so that one key's events stay in order. Once every event is acknowledged, the producer announces the run's size on `herald.control` (`run-produced`).",
      "messages": [
        "$ref:$.channels.retailExit.messages.RetailExit"
      ],
      "x-parser-unique-object-id": "produceRetailExit"
    },
    "mergeRetailInjections": {
      "action": "receive",
      "channel": "$ref:$.channels.retailInjections",
      "title": "producer: receive herald.retail.injections",
      "summary": "The producer merges `herald.retail.injections` into the run's timeline.",
      "description": "It `assign()`s every partition from the run's request time (`offsets_for_times`), no consumer group, and reads the run's records (keyed by run id) before each tick, and to the end before the run ends.",
      "messages": [
        "$ref:$.channels.retailInjections.messages.RetailInjection"
      ],
      "x-parser-unique-object-id": "mergeRetailInjections"
    },
    "monitorRuns": {
      "action": "receive",
      "channel": "$ref:$.channels.runs",
      "title": "monitor: receive herald.runs",
      "summary": "The monitor learns each run's expected count.",
      "description": "It `assign()`s every partition and reads from the beginning: no consumer group.",
      "messages": [
        "$ref:$.channels.runs.messages.RunRequest"
      ],
      "x-parser-unique-object-id": "monitorRuns"
    },
    "monitorRetailEnter": {
      "action": "receive",
      "channel": "$ref:$.channels.retailEnter",
      "title": "monitor: receive herald.retail.enter",
      "summary": "The monitor aggregates results into the live view.",
      "description": "It `assign()`s every partition and reads from the beginning: no consumer group. It counts each `(run_id, seq)` once.",
      "messages": [
        "$ref:$.channels.retailEnter.messages.RetailEnter"
      ],
      "x-parser-unique-object-id": "monitorRetailEnter"
    },
    "monitorRetailMove": {
      "action": "receive",
      "channel": "$ref:$.channels.retailMove",
      "title": "monitor: receive herald.retail.move",
      "summary": "The monitor aggregates results into the live view.",
      "description": "It `assign()`s every partition and reads from the beginning: no consumer group. It counts each `(run_id, seq)` once.",
      "messages": [
        "$ref:$.channels.retailMove.messages.RetailMove"
      ],
      "x-parser-unique-object-id": "monitorRetailMove"
    },
    "monitorRetailExit": {
      "action": "receive",
      "channel": "$ref:$.channels.retailExit",
      "title": "monitor: receive herald.retail.exit",
      "summary": "The monitor aggregates results into the live view.",
      "description": "It `assign()`s every partition and reads from the beginning: no consumer group. It counts each `(run_id, seq)` once.",
      "messages": [
        "$ref:$.channels.retailExit.messages.RetailExit"
      ],
      "x-parser-unique-object-id": "monitorRetailExit"
    },
    "monitorSmsResults": {
      "action": "receive",
      "channel": "$ref:$.channels.smsResults",
      "title": "monitor: receive herald.sms.results",
      "summary": "The monitor aggregates results into the live view.",
      "description": "It `assign()`s every partition and reads from the beginning: no consumer group. It counts each `(run_id, seq)` once.",
      "messages": [
        "$ref:$.channels.smsResults.messages.SmsResult"
      ],
      "x-parser-unique-object-id": "monitorSmsResults"
    },
    "monitorRunProduced": {
      "action": "receive",
      "channel": "$ref:$.channels.control",
      "title": "monitor: receive herald.control",
      "summary": "The monitor learns the size of a run known only once produced.",
      "description": "`run-produced` events; it `assign()`s the partition and reads from the beginning. Other events are read past.",
      "messages": [
        "$ref:$.channels.control.messages.ControlEvent"
      ],
      "x-parser-unique-object-id": "monitorRunProduced"
    },
    "monitorDeadLetters": {
      "action": "receive",
      "channel": "$ref:$.channels.dlq",
      "title": "monitor: receive herald.dlq",
      "summary": "The monitor counts dead letters.",
      "description": "It `assign()`s every partition and reads from the beginning: no consumer group.",
      "messages": [
        "$ref:$.channels.dlq.messages.DeadLetter"
      ],
      "x-parser-unique-object-id": "monitorDeadLetters"
    },
    "recordRun": {
      "action": "receive",
      "channel": "$ref:$.channels.runs",
      "title": "recorder: receive herald.runs",
      "summary": "The recorder keeps each run in Postgres (`runs`).",
      "messages": [
        "$ref:$.channels.runs.messages.RunRequest"
      ],
      "bindings": {
        "kafka": {
          "groupId": {
            "type": "string",
            "enum": [
              "herald-recorders"
            ],
            "description": "`{namespace}.herald-recorders` under a namespace."
          },
          "bindingVersion": "0.5.0"
        }
      },
      "x-parser-unique-object-id": "recordRun"
    },
    "recordRetailEnter": {
      "action": "receive",
      "channel": "$ref:$.channels.retailEnter",
      "title": "recorder: receive herald.retail.enter",
      "summary": "The recorder writes each result to Postgres (`outcomes`), idempotently.",
      "description": "Upsert on the message id; offsets are committed after the database commit.",
      "messages": [
        "$ref:$.channels.retailEnter.messages.RetailEnter"
      ],
      "bindings": {
        "kafka": {
          "groupId": {
            "type": "string",
            "enum": [
              "herald-recorders"
            ],
            "description": "`{namespace}.herald-recorders` under a namespace."
          },
          "bindingVersion": "0.5.0"
        }
      },
      "x-parser-unique-object-id": "recordRetailEnter"
    },
    "recordRetailMove": {
      "action": "receive",
      "channel": "$ref:$.channels.retailMove",
      "title": "recorder: receive herald.retail.move",
      "summary": "The recorder writes each result to Postgres (`outcomes`), idempotently.",
      "description": "Upsert on the message id; offsets are committed after the database commit.",
      "messages": [
        "$ref:$.channels.retailMove.messages.RetailMove"
      ],
      "bindings": {
        "kafka": {
          "groupId": {
            "type": "string",
            "enum": [
              "herald-recorders"
            ],
            "description": "`{namespace}.herald-recorders` under a namespace."
          },
          "bindingVersion": "0.5.0"
        }
      },
      "x-parser-unique-object-id": "recordRetailMove"
    },
    "recordRetailExit": {
      "action": "receive",
      "channel": "$ref:$.channels.retailExit",
      "title": "recorder: receive herald.retail.exit",
      "summary": "The recorder writes each result to Postgres (`outcomes`), idempotently.",
      "description": "Upsert on the message id; offsets are committed after the database commit.",
      "messages": [
        "$ref:$.channels.retailExit.messages.RetailExit"
      ],
      "bindings": {
        "kafka": {
          "groupId": {
            "type": "string",
            "enum": [
              "herald-recorders"
            ],
            "description": "`{namespace}.herald-recorders` under a namespace."
          },
          "bindingVersion": "0.5.0"
        }
      },
      "x-parser-unique-object-id": "recordRetailExit"
    },
    "recordSmsResults": {
      "action": "receive",
      "channel": "$ref:$.channels.smsResults",
      "title": "recorder: receive herald.sms.results",
      "summary": "The recorder writes each result to Postgres (`outcomes`), idempotently.",
      "description": "Upsert on the message id; offsets are committed after the database commit.",
      "messages": [
        "$ref:$.channels.smsResults.messages.SmsResult"
      ],
      "bindings": {
        "kafka": {
          "groupId": {
            "type": "string",
            "enum": [
              "herald-recorders"
            ],
            "description": "`{namespace}.herald-recorders` under a namespace."
          },
          "bindingVersion": "0.5.0"
        }
      },
      "x-parser-unique-object-id": "recordSmsResults"
    },
    "recordTelemetryStreams": {
      "action": "receive",
      "channel": "$ref:$.channels.telemetryStreams",
      "title": "recorder: receive herald.telemetry.streams",
      "summary": "The recorder keeps `herald.telemetry.streams` in the scenario's own tables.",
      "description": "Idempotent (a frame once per stream and number; a stream's end is final); offsets are committed after the database commit.",
      "messages": [
        "$ref:$.channels.telemetryStreams.messages.StreamEvent"
      ],
      "bindings": {
        "kafka": {
          "groupId": {
            "type": "string",
            "enum": [
              "herald-recorders"
            ],
            "description": "`{namespace}.herald-recorders` under a namespace."
          },
          "bindingVersion": "0.5.0"
        }
      },
      "x-parser-unique-object-id": "recordTelemetryStreams"
    },
    "recordTelemetryFrames": {
      "action": "receive",
      "channel": "$ref:$.channels.telemetryFrames",
      "title": "recorder: receive herald.telemetry.frames",
      "summary": "The recorder keeps `herald.telemetry.frames` in the scenario's own tables.",
      "description": "Idempotent (a frame once per stream and number; a stream's end is final); offsets are committed after the database commit.",
      "messages": [
        "$ref:$.channels.telemetryFrames.messages.TelemetryFrame"
      ],
      "bindings": {
        "kafka": {
          "groupId": {
            "type": "string",
            "enum": [
              "herald-recorders"
            ],
            "description": "`{namespace}.herald-recorders` under a namespace."
          },
          "bindingVersion": "0.5.0"
        }
      },
      "x-parser-unique-object-id": "recordTelemetryFrames"
    },
    "recordRunProduced": {
      "action": "receive",
      "channel": "$ref:$.channels.control",
      "title": "recorder: receive herald.control",
      "summary": "The recorder keeps the size of a run known only once produced (`runs.expected`) and judges its completion by it.",
      "description": "`run-produced` events, in the recorders' group (the topic's one partition: one member); other events are read past, never dead-lettered.",
      "messages": [
        "$ref:$.channels.control.messages.ControlEvent"
      ],
      "bindings": {
        "kafka": {
          "groupId": {
            "type": "string",
            "enum": [
              "herald-recorders"
            ],
            "description": "`{namespace}.herald-recorders` under a namespace."
          },
          "bindingVersion": "0.5.0"
        }
      },
      "x-parser-unique-object-id": "recordRunProduced"
    },
    "submitRun": {
      "action": "send",
      "channel": "$ref:$.channels.runs",
      "title": "web: send herald.runs",
      "summary": "The web API, `herald submit` and `sim.run` ask for a run.",
      "description": "One record per run, keyed by its `run_id`, acknowledged by the broker before the caller reports the run id.",
      "messages": [
        "$ref:$.channels.runs.messages.RunRequest"
      ],
      "x-parser-unique-object-id": "submitRun"
    },
    "stopTelemetryStreams": {
      "action": "send",
      "channel": "$ref:$.channels.telemetryCommands",
      "title": "web: send herald.telemetry.commands",
      "summary": "`DELETE /api/telemetry/schedules/{id}` publishes a running stream's stop command.",
      "description": "Keyed by schedule id, so it reaches the spaceship that runs the stream; acknowledged by the broker before the 202.",
      "messages": [
        "$ref:$.channels.telemetryCommands.messages.StreamCommand"
      ],
      "x-parser-unique-object-id": "stopTelemetryStreams"
    },
    "injectRetailInjections": {
      "action": "send",
      "channel": "$ref:$.channels.retailInjections",
      "title": "web: send herald.retail.injections",
      "summary": "The web API journals each injected event on `herald.retail.injections`.",
      "description": "Checked first against the run and who is inside (Postgres), keyed by run id (one partition per run: in order), acknowledged before the caller gets 202.",
      "messages": [
        "$ref:$.channels.retailInjections.messages.RetailInjection"
      ],
      "x-parser-unique-object-id": "injectRetailInjections"
    },
    "fireTimers": {
      "action": "send",
      "channel": "$ref:$.channels.timersFire",
      "title": "scheduler: send herald.timers.fire",
      "summary": "The scheduler publishes each webhook timer's fire command at its due time.",
      "description": "Claimed from Postgres with `FOR UPDATE SKIP LOCKED` under a lease with a fencing token (`fence`): a notifier delivers only the command of a timer's latest claim. Keyed by timer id. At least once: a scheduler that dies between publishing and marking leaves the timer to be published again.",
      "messages": [
        "$ref:$.channels.timersFire.messages.FireCommand"
      ],
      "x-parser-unique-object-id": "fireTimers"
    },
    "startScheduledRuns": {
      "action": "send",
      "channel": "$ref:$.channels.runs",
      "title": "scheduler: send herald.runs",
      "summary": "The scheduler publishes a scheduled run's request at its `start_at`.",
      "messages": [
        "$ref:$.channels.runs.messages.RunRequest"
      ],
      "x-parser-unique-object-id": "startScheduledRuns"
    },
    "startTelemetryStreams": {
      "action": "send",
      "channel": "$ref:$.channels.telemetryCommands",
      "title": "scheduler: send herald.telemetry.commands",
      "summary": "The scheduler publishes a telemetry schedule's start command at its `start_at` (never after its `not_after`: the schedule expires).",
      "description": "Keyed by schedule id. At least once, like every due item: a spaceship starts a schedule's stream once however often its command comes.",
      "messages": [
        "$ref:$.channels.telemetryCommands.messages.StreamCommand"
      ],
      "x-parser-unique-object-id": "startTelemetryStreams"
    },
    "deliverTimers": {
      "action": "receive",
      "channel": "$ref:$.channels.timersFire",
      "title": "notifier: receive herald.timers.fire",
      "summary": "The notifiers POST each timer's callback, as one consumer group.",
      "description": "Each takes the timer for delivery in Postgres (a lease) before it POSTs, records every attempt, and commits the command's offset only once the timer's state is durable.",
      "messages": [
        "$ref:$.channels.timersFire.messages.FireCommand"
      ],
      "bindings": {
        "kafka": {
          "groupId": {
            "type": "string",
            "enum": [
              "herald-notifiers"
            ],
            "description": "`{namespace}.herald-notifiers` under a namespace."
          },
          "bindingVersion": "0.5.0"
        }
      },
      "x-parser-unique-object-id": "deliverTimers"
    },
    "runTelemetryStreams": {
      "action": "receive",
      "channel": "$ref:$.channels.telemetryCommands",
      "title": "spaceship: receive herald.telemetry.commands",
      "summary": "The spaceships start and stop streams, as one consumer group.",
      "description": "A start begins `rate_hz × duration_s` UDP datagrams (CCSDS space packets) to the schedule's `host:port`, one loop for all of a process's streams; a stop (same key, same member) ends one. The offset is committed once the stream is taken on.",
      "messages": [
        "$ref:$.channels.telemetryCommands.messages.StreamCommand"
      ],
      "bindings": {
        "kafka": {
          "groupId": {
            "type": "string",
            "enum": [
              "herald-spaceships"
            ],
            "description": "`{namespace}.herald-spaceships` under a namespace."
          },
          "bindingVersion": "0.5.0"
        }
      },
      "x-parser-unique-object-id": "runTelemetryStreams"
    },
    "reportTelemetryStreams": {
      "action": "send",
      "channel": "$ref:$.channels.telemetryStreams",
      "title": "spaceship: send herald.telemetry.streams",
      "summary": "Each spaceship reports its streams' starts and ends, with the packets sent and dropped.",
      "description": "Keyed by schedule id: a stream's events stay in order.",
      "messages": [
        "$ref:$.channels.telemetryStreams.messages.StreamEvent"
      ],
      "x-parser-unique-object-id": "reportTelemetryStreams"
    },
    "ingestTelemetryFrames": {
      "action": "send",
      "channel": "$ref:$.channels.telemetryFrames",
      "title": "ingestor: send herald.telemetry.frames",
      "summary": "The ingestor publishes each valid datagram as a frame, keyed by ship.",
      "description": "Numbered within its stream from the 14-bit sequence count; malformed datagrams go to `herald.dlq` with the reason and the sender's address (`herald.dlq.sender`).",
      "messages": [
        "$ref:$.channels.telemetryFrames.messages.TelemetryFrame"
      ],
      "x-parser-unique-object-id": "ingestTelemetryFrames"
    },
    "announce": {
      "action": "send",
      "channel": "$ref:$.channels.control",
      "title": "every service: send herald.control",
      "summary": "Every service announces its lifecycle (started, ready, stopped); the producer a run's size once produced (a timeline's); the recorder a run's completion; the monitor its figures.",
      "description": "Fire and forget, keyed by instance or run id. Orchestrators (`sim.run`, `herald submit --wait`, `stack.up`) read it from a point in time.",
      "messages": [
        "$ref:$.channels.control.messages.ControlEvent"
      ],
      "x-parser-unique-object-id": "announce"
    },
    "orchestrate": {
      "action": "receive",
      "channel": "$ref:$.channels.control",
      "title": "every service: receive herald.control",
      "summary": "`sim.run`, `herald submit --wait` and `stack.up` wait on these events.",
      "description": "They `assign()` its one partition from a time (`offsets_for_times`): no consumer group.",
      "messages": [
        "$ref:$.channels.control.messages.ControlEvent"
      ],
      "x-parser-unique-object-id": "orchestrate"
    },
    "deadLetter": {
      "action": "send",
      "channel": "$ref:$.channels.dlq",
      "title": "every service: send herald.dlq",
      "summary": "Records that cannot be processed go to the dead-letter topic, unchanged.",
      "description": "The value and key are the original record's; the headers say why and where from. A value over 900,000 bytes is cut to its first 900,000 (the reason says so), so that the dead letter itself stays under the 1 MB record limit.",
      "messages": [
        "$ref:$.channels.dlq.messages.DeadLetter"
      ],
      "x-parser-unique-object-id": "deadLetter"
    }
  },
  "components": {
    "schemas": {
      "ControlEvent": "$ref:$.channels.control.messages.ControlEvent.payload",
      "FireCommand": "$ref:$.channels.timersFire.messages.FireCommand.payload",
      "RetailEnter": "$ref:$.channels.retailEnter.messages.RetailEnter.payload",
      "RetailExit": "$ref:$.channels.retailExit.messages.RetailExit.payload",
      "RetailInjection": "$ref:$.channels.retailInjections.messages.RetailInjection.payload",
      "RetailMove": "$ref:$.channels.retailMove.messages.RetailMove.payload",
      "RetailRun": "$ref:$.channels.runs.messages.RunRequest.payload.oneOf[0]",
      "RunCompleted": "$ref:$.channels.control.messages.ControlEvent.payload.oneOf[1]",
      "RunFigures": "$ref:$.channels.control.messages.ControlEvent.payload.oneOf[3]",
      "RunProduced": "$ref:$.channels.control.messages.ControlEvent.payload.oneOf[2]",
      "RunRequest": "$ref:$.channels.runs.messages.RunRequest.payload",
      "ServiceEvent": "$ref:$.channels.control.messages.ControlEvent.payload.oneOf[0]",
      "SmsMessage": "$ref:$.channels.smsOutbound.messages.SmsMessage.payload",
      "SmsResult": "$ref:$.channels.smsResults.messages.SmsResult.payload",
      "SmsRun": "$ref:$.channels.runs.messages.RunRequest.payload.oneOf[1]",
      "StreamCommand": "$ref:$.channels.telemetryCommands.messages.StreamCommand.payload",
      "StreamEvent": "$ref:$.channels.telemetryStreams.messages.StreamEvent.payload",
      "TelemetryFrame": "$ref:$.channels.telemetryFrames.messages.TelemetryFrame.payload",
      "TelemetryRun": "$ref:$.channels.runs.messages.RunRequest.payload.oneOf[2]"
    },
    "messages": {
      "RunRequest": "$ref:$.channels.runs.messages.RunRequest",
      "RetailEnter": "$ref:$.channels.retailEnter.messages.RetailEnter",
      "RetailMove": "$ref:$.channels.retailMove.messages.RetailMove",
      "RetailExit": "$ref:$.channels.retailExit.messages.RetailExit",
      "RetailInjection": "$ref:$.channels.retailInjections.messages.RetailInjection",
      "SmsMessage": "$ref:$.channels.smsOutbound.messages.SmsMessage",
      "SmsResult": "$ref:$.channels.smsResults.messages.SmsResult",
      "StreamCommand": "$ref:$.channels.telemetryCommands.messages.StreamCommand",
      "StreamEvent": "$ref:$.channels.telemetryStreams.messages.StreamEvent",
      "TelemetryFrame": "$ref:$.channels.telemetryFrames.messages.TelemetryFrame",
      "FireCommand": "$ref:$.channels.timersFire.messages.FireCommand",
      "ControlEvent": "$ref:$.channels.control.messages.ControlEvent",
      "DeadLetter": "$ref:$.channels.dlq.messages.DeadLetter"
    },
    "securitySchemes": {
      "saslScram": "$ref:$.servers.cluster.security[0]",
      "mutualTls": "$ref:$.servers.cluster.security[1]"
    }
  },
  "x-parser-spec-parsed": true,
  "x-parser-api-version": 3,
  "x-parser-spec-stringified": true
};
    const config = {"show":{"sidebar":true},"sidebar":{"showOperations":"byDefault"}};
    const appRoot = document.getElementById('root');
    AsyncApiStandalone.render(
        { schema, config, }, appRoot
    );
  