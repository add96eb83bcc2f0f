
    const schema = {
  "asyncapi": "3.0.0",
  "id": "urn:herald:topics",
  "info": {
    "title": "herald topics",
    "version": "0.1.0",
    "description": "herald simulates SMS delivery over Kafka. Its services meet only on these topics, so the\ntopics are its API: this document is generated from `herald.contracts` (the one definition\nthe services serialise and validate with) by `poetry run invoke app.gen-asyncapi-spec`.\n\n```\nweb / CLI -> herald.runs -> producer -> herald.sms.outbound -> senders (consumer group)\n                                                                  |  (transactions)\n         monitor, recorder <- herald.sms.results <----------------+\n records that cannot be processed -> herald.dlq (reason and source in headers)\n```\n\n* Every record is JSON (UTF-8), except dead letters, which keep the original bytes.\n* Every message has a stable id chosen by its creator; the record key is that id, so\n  replays are harmless when writes are idempotent on it.\n* With `kafka.namespace` set (`HERALD_KAFKA_NAMESPACE`), every topic, consumer group and\n  transactional id is prefixed with `{namespace}.` (tests and tenants sharing a cluster).\n\n### Writing a new consumer of results\n\nSubscribe to `herald.sms.results` with your own `group.id`, `isolation.level=read_committed`\n(results are written in Kafka transactions) and `auto.offset.reset=earliest`. Each message\nhas exactly one committed result; make your writes idempotent on `message_id` (the key) and\ncommit offsets after your writes are durable. Decode with the `SmsResult` schema below:\nunknown fields are rejected by herald's own decoder, so a new field is a new contract\nversion. Timestamps are RFC 3339, UTC.\n",
    "tags": [
      {
        "name": "control"
      },
      {
        "name": "work"
      },
      {
        "name": "facts"
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
          "summary": "A request to run a workload: the producer generates `messages` records for it.",
          "contentType": "application/json",
          "payload": {
            "title": "RunRequest",
            "description": "A request to run a workload: the producer generates `messages` records for it.",
            "type": "object",
            "properties": {
              "run_id": {
                "description": "Run id",
                "type": "string",
                "pattern": "^[A-Za-z0-9_-]{1,64}$",
                "x-parser-schema-id": "<anonymous-schema-1>"
              },
              "messages": {
                "description": "How many messages the run produces",
                "type": "integer",
                "minimum": 1,
                "maximum": 1000000000,
                "x-parser-schema-id": "<anonymous-schema-2>"
              },
              "seed": {
                "description": "Seed of the content: the same seed, the same messages",
                "type": "integer",
                "minimum": 0,
                "x-parser-schema-id": "<anonymous-schema-3>"
              },
              "rate": {
                "anyOf": [
                  {
                    "description": "Producer rate limit, messages/s; null: unpaced",
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "x-parser-schema-id": "<anonymous-schema-5>"
                  },
                  {
                    "type": "null",
                    "x-parser-schema-id": "<anonymous-schema-6>"
                  }
                ],
                "default": null,
                "x-parser-schema-id": "<anonymous-schema-4>"
              },
              "scenario": {
                "description": "The workload generator",
                "enum": [
                  "sms"
                ],
                "default": "sms",
                "x-parser-schema-id": "<anonymous-schema-7>"
              },
              "requested_at": {
                "format": "date-time",
                "description": "When the run was asked for",
                "type": "string",
                "x-parser-schema-id": "<anonymous-schema-8>"
              },
              "config": {
                "description": "Settings the run was asked with, for the record",
                "type": "object",
                "default": {},
                "x-parser-schema-id": "<anonymous-schema-9>"
              }
            },
            "required": [
              "run_id",
              "messages",
              "seed",
              "requested_at"
            ],
            "additionalProperties": false,
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
              "name": "unpaced",
              "summary": "10,000 messages as fast as the broker takes them",
              "payload": {
                "run_id": "7f3a9c2e41b0",
                "messages": 10000,
                "seed": 42,
                "rate": null,
                "scenario": "sms",
                "requested_at": "2025-01-15T09:30:00Z",
                "config": {}
              }
            },
            {
              "name": "paced",
              "summary": "The same, at most 500 messages/s",
              "payload": {
                "run_id": "5b61d0e8a9c3",
                "messages": 10000,
                "seed": 42,
                "rate": 500,
                "scenario": "sms",
                "requested_at": "2025-01-15T09:30:00Z",
                "config": {}
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
    "outbound": {
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
                "x-parser-schema-id": "<anonymous-schema-10>"
              },
              "run_id": {
                "description": "Run id",
                "type": "string",
                "pattern": "^[A-Za-z0-9_-]{1,64}$",
                "x-parser-schema-id": "<anonymous-schema-11>"
              },
              "seq": {
                "description": "The message's position in its run, from 0",
                "type": "integer",
                "minimum": 0,
                "x-parser-schema-id": "<anonymous-schema-12>"
              },
              "phone": {
                "description": "E.164 phone number",
                "examples": [
                  "+14155550123"
                ],
                "type": "string",
                "pattern": "^\\+[1-9][0-9]{7,14}$",
                "x-parser-schema-id": "<anonymous-schema-13>"
              },
              "text": {
                "description": "SMS body, 1-100 chars",
                "type": "string",
                "maxLength": 100,
                "minLength": 1,
                "x-parser-schema-id": "<anonymous-schema-14>"
              },
              "created_at": {
                "format": "date-time",
                "description": "When the producer created the message",
                "type": "string",
                "x-parser-schema-id": "<anonymous-schema-15>"
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
                "description": "The message id (`id` of the message, `message_id` of a result).",
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
                "phone": "+915644496644",
                "text": "-VefsRwKewhVgkmVA.s6C7q- FunxfkKowQlHuwIf",
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
      "x-parser-unique-object-id": "outbound"
    },
    "results": {
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
                "x-parser-schema-id": "<anonymous-schema-16>"
              },
              "run_id": {
                "description": "Run id",
                "type": "string",
                "pattern": "^[A-Za-z0-9_-]{1,64}$",
                "x-parser-schema-id": "<anonymous-schema-17>"
              },
              "seq": {
                "description": "The message's position in its run",
                "type": "integer",
                "minimum": 0,
                "x-parser-schema-id": "<anonymous-schema-18>"
              },
              "sender_id": {
                "description": "Sender index",
                "type": "integer",
                "minimum": 0,
                "maximum": 1000000,
                "x-parser-schema-id": "<anonymous-schema-19>"
              },
              "status": {
                "description": "`sent`, or `failed` after the last attempt",
                "enum": [
                  "failed",
                  "sent"
                ],
                "x-parser-schema-id": "<anonymous-schema-20>"
              },
              "latency_ms": {
                "description": "Simulated send time, all attempts and backoff included",
                "type": "number",
                "minimum": 0,
                "x-parser-schema-id": "<anonymous-schema-21>"
              },
              "attempts": {
                "description": "Send attempts made (1 = no retry)",
                "type": "integer",
                "minimum": 1,
                "x-parser-schema-id": "<anonymous-schema-22>"
              },
              "created_at": {
                "format": "date-time",
                "description": "When the producer created the message",
                "type": "string",
                "x-parser-schema-id": "<anonymous-schema-23>"
              },
              "received_at": {
                "format": "date-time",
                "description": "When the sender took the message",
                "type": "string",
                "x-parser-schema-id": "<anonymous-schema-24>"
              },
              "completed_at": {
                "format": "date-time",
                "description": "When the send completed or failed",
                "type": "string",
                "x-parser-schema-id": "<anonymous-schema-25>"
              },
              "failure_reason": {
                "description": "Why the send failed; null when sent",
                "anyOf": [
                  {
                    "type": "string",
                    "x-parser-schema-id": "<anonymous-schema-27>"
                  },
                  {
                    "type": "null",
                    "x-parser-schema-id": "<anonymous-schema-28>"
                  }
                ],
                "default": null,
                "x-parser-schema-id": "<anonymous-schema-26>"
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
                "description": "The message id (`id` of the message, `message_id` of a result).",
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
      "x-parser-unique-object-id": "results"
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
                "x-parser-schema-id": "<anonymous-schema-30>"
              },
              "herald.dlq.topic": {
                "type": "string",
                "minLength": 1,
                "description": "The topic the record was read from.",
                "x-parser-schema-id": "<anonymous-schema-31>"
              },
              "herald.dlq.partition": {
                "type": "string",
                "pattern": "^[0-9]+$",
                "description": "Its partition.",
                "x-parser-schema-id": "<anonymous-schema-32>"
              },
              "herald.dlq.offset": {
                "type": "string",
                "pattern": "^[0-9]+$",
                "description": "Its offset.",
                "x-parser-schema-id": "<anonymous-schema-33>"
              },
              "herald.dlq.service": {
                "type": "string",
                "pattern": "^(producer|recorder|sender-[0-9]+)$",
                "description": "The service that dead-lettered it.",
                "x-parser-schema-id": "<anonymous-schema-34>"
              }
            },
            "x-parser-schema-id": "<anonymous-schema-29>"
          },
          "payload": {
            "description": "The original record's value, byte for byte: possibly not JSON, possibly not UTF-8; cut to its first 900,000 bytes when longer.",
            "x-parser-schema-id": "<anonymous-schema-35>"
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
              "name": "empty-text",
              "summary": "A message a sender could not decode",
              "headers": {
                "herald.dlq.reason": "ValidationError: Expected `str` of length >= 1 - at `$.text`",
                "herald.dlq.topic": "herald.sms.outbound",
                "herald.dlq.partition": "3",
                "herald.dlq.offset": "1041",
                "herald.dlq.service": "sender-0"
              },
              "payload": "{\"id\":\"7f3a9c2e41b0-0\",\"run_id\":\"7f3a9c2e41b0\",\"seq\":0,\"phone\":\"+915644496644\",\"text\":\"\",\"created_at\":\"2025-01-15T09:30:00.500000Z\"}"
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
    "submitRun": {
      "action": "send",
      "channel": "$ref:$.channels.runs",
      "title": "web API, CLI: send herald.runs",
      "summary": "The web API, `herald submit` and `sim.run` ask for a run.",
      "description": "One record per run, keyed by its `run_id`, acknowledged by the broker before the caller reports the run id.",
      "messages": [
        "$ref:$.channels.runs.messages.RunRequest"
      ],
      "x-parser-unique-object-id": "submitRun"
    },
    "produceRun": {
      "action": "receive",
      "channel": "$ref:$.channels.runs",
      "title": "producer: receive herald.runs",
      "summary": "The producer turns each run request into `messages` SMS messages.",
      "description": "Its offset is committed only after every message of the run is acknowledged, so a producer stopped mid-run leaves the request to the next one, which produces the same ids and content again (the seed is in the request). An invalid request goes to the dead-letter topic.",
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
    "sendSms": {
      "action": "send",
      "channel": "$ref:$.channels.outbound",
      "title": "producer: send herald.sms.outbound",
      "summary": "The producer publishes a run's messages.",
      "description": "Idempotent producer, `acks=all`, keyed by message id: messages spread over every partition.",
      "messages": [
        "$ref:$.channels.outbound.messages.SmsMessage"
      ],
      "x-parser-unique-object-id": "sendSms"
    },
    "deliverSms": {
      "action": "receive",
      "channel": "$ref:$.channels.outbound",
      "title": "senders: receive herald.sms.outbound",
      "summary": "Senders deliver the messages, as one consumer group.",
      "description": "`read_committed`, cooperative-sticky assignment. Each message is consumed, its delivery simulated, and its result produced in one Kafka transaction together with the consumed offset: exactly one result per message, even when a sender dies.",
      "messages": [
        "$ref:$.channels.outbound.messages.SmsMessage"
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
      "x-parser-unique-object-id": "deliverSms"
    },
    "publishResult": {
      "action": "send",
      "channel": "$ref:$.channels.results",
      "title": "senders: send herald.sms.results",
      "summary": "Each sender publishes one result per message, in Kafka transactions.",
      "description": "One transactional producer per consumed partition, id `herald-sender-p{partition}` (`{namespace}.herald-sender-p{partition}` under a namespace): whoever takes a partition over fences its previous owner. Results of a partition are released in offset order. Read them with `isolation.level=read_committed`, and count a message once by `run_id` and `seq`: a broker that shows aborted transactions' records (the embedded one does) may deliver a result twice.",
      "messages": [
        "$ref:$.channels.results.messages.SmsResult"
      ],
      "x-parser-unique-object-id": "publishResult"
    },
    "recordResult": {
      "action": "receive",
      "channel": "$ref:$.channels.results",
      "title": "recorder: receive herald.sms.results",
      "summary": "The recorder writes each result to Postgres (`outcomes`), idempotently.",
      "description": "Upsert on `message_id`; offsets are committed after the database commit.",
      "messages": [
        "$ref:$.channels.results.messages.SmsResult"
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
      "x-parser-unique-object-id": "recordResult"
    },
    "monitorResults": {
      "action": "receive",
      "channel": "$ref:$.channels.results",
      "title": "monitor: receive herald.sms.results",
      "summary": "The monitor aggregates results into the live view.",
      "description": "It `assign()`s every partition and reads from the beginning: no consumer group. It counts each `(run_id, seq)` once.",
      "messages": [
        "$ref:$.channels.results.messages.SmsResult"
      ],
      "x-parser-unique-object-id": "monitorResults"
    },
    "deadLetter": {
      "action": "send",
      "channel": "$ref:$.channels.dlq",
      "title": "producer, senders, recorder: send herald.dlq",
      "summary": "Records that cannot be processed go to the dead-letter topic, unchanged.",
      "description": "The value and key are the original record's; the headers say why and where from. A value over 900,000 bytes is cut to its first 900,000 (the reason says so), so that the dead letter itself stays under the 1 MB record limit.",
      "messages": [
        "$ref:$.channels.dlq.messages.DeadLetter"
      ],
      "x-parser-unique-object-id": "deadLetter"
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
    }
  },
  "components": {
    "schemas": {
      "RunRequest": "$ref:$.channels.runs.messages.RunRequest.payload",
      "SmsMessage": "$ref:$.channels.outbound.messages.SmsMessage.payload",
      "SmsResult": "$ref:$.channels.results.messages.SmsResult.payload"
    },
    "messages": {
      "RunRequest": "$ref:$.channels.runs.messages.RunRequest",
      "SmsMessage": "$ref:$.channels.outbound.messages.SmsMessage",
      "SmsResult": "$ref:$.channels.results.messages.SmsResult",
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
  