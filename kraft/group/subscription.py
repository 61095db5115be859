"""Reading the topics out of a consumer's JoinGroup metadata (ConsumerProtocolSubscription),
which OffsetDelete needs to refuse deleting offsets of topics the group still reads."""

from __future__ import annotations

import struct

from kio.schema.consumer_protocol_subscription.v0.data import ConsumerProtocolSubscription as SubscriptionV0
from kio.serial import entity_reader
from kio.serial.errors import SerialError


def subscribed_topics(metadata: bytes) -> set[str]:
    """The ``topics`` of the subscription; any version decodes as v0 for that field."""
    if len(metadata) < 2:
        return set()
    try:
        subscription, _ = entity_reader(SubscriptionV0)(memoryview(metadata), 2)
    except (SerialError, ValueError, UnicodeDecodeError, struct.error):
        return set()
    return set(subscription.topics)
