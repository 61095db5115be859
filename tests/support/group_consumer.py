"""A confluent-kafka group member run as its own process, so a test can stop it cleanly
(SIGTERM: close, which sends LeaveGroup) or crash it (SIGKILL: no LeaveGroup).

Usage: python -m tests.support.group_consumer BOOTSTRAP GROUP TOPIC [key=value ...]
Prints one JSON line per processed record ({"p": partition, "o": offset, "k": key}) after
its offset is committed, and {"assigned": [...]} (the partitions it owns) whenever that changes.
"""

from __future__ import annotations

import json
import signal
import sys


def main(argv: list[str]) -> int:
    from confluent_kafka import Consumer

    bootstrap, group, topic, *extra = argv
    config = {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
              "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
              "heartbeat.interval.ms": 500}
    config.update(item.split("=", 1) for item in extra)
    consumer = Consumer(config)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))

    consumer.subscribe([topic])
    owned: list[int] | None = None
    try:
        while not stopping:
            messages = consumer.consume(100, 0.2)
            now_owned = sorted(p.partition for p in consumer.assignment())
            if now_owned != owned:
                owned = now_owned
                print(json.dumps({"assigned": owned}), flush=True)
            processed = [m for m in messages if m.error() is None]
            if not processed:
                continue
            consumer.commit(asynchronous=False)
            for message in processed:
                print(json.dumps({"p": message.partition(), "o": message.offset(),
                                  "k": message.key().decode()}), flush=True)
    finally:
        consumer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
