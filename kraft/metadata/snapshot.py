"""A metadata image as the records that rebuild it: the payload of a metadata snapshot.

Replaying ``image_records(image)`` on an empty image gives the same image (a property
test checks it), so a snapshot can replace every log entry below its end offset. The
payload is msgpack of the encoded records, in an order that replays cleanly: features,
brokers, topics with their partitions and configs, broker configs, producer ids.
"""

from __future__ import annotations

import msgpack

from .image import MetadataImage
from .records import (
    TOPIC_RESOURCE, ConfigRecord, FeatureLevelRecord, MetadataRecordError, PartitionRecord,
    ProducerIdsRecord, RegisterBrokerRecord, TopicRecord, decode_record, encode_record,
)


def image_records(image: MetadataImage) -> list:
    records: list = [FeatureLevelRecord(name, level) for name, level in sorted(image.features.items())]
    for broker in sorted(image.brokers.values(), key=lambda b: b.broker_id):
        records.append(RegisterBrokerRecord(broker.broker_id, broker.incarnation_id, broker.broker_epoch,
                                            broker.endpoints, broker.rack, broker.fenced))
    for name in sorted(image.topic_ids_by_name):
        topic = image.topic(name)
        records.append(TopicRecord(name, topic.topic_id))
        for partition in topic.partitions.values():
            records.append(PartitionRecord(topic.topic_id, partition.partition_id, partition.replicas,
                                           partition.isr, partition.leader, partition.leader_epoch,
                                           partition.partition_epoch))
    for (resource_type, resource_name), entries in sorted(image.configs.items()):
        if resource_type == TOPIC_RESOURCE and resource_name not in image.topic_ids_by_name:
            continue
        for key, value in sorted(entries.items()):
            records.append(ConfigRecord(resource_type, resource_name, key, value))
    if image.next_producer_id:
        records.append(ProducerIdsRecord(-1, -1, image.next_producer_id))
    return records


def encode_snapshot(image: MetadataImage) -> bytes:
    return msgpack.packb([encode_record(r) for r in image_records(image)], use_bin_type=True)


def decode_snapshot(data: bytes, offset: int) -> MetadataImage:
    try:
        encoded = msgpack.unpackb(data, raw=False)
    except (ValueError, msgpack.UnpackException) as error:
        raise MetadataRecordError(f"unreadable metadata snapshot: {error!r}") from None
    return MetadataImage().apply([decode_record(item) for item in encoded], offset)
