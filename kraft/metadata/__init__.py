"""Metadata records and the immutable image brokers serve from."""

from .image import FULL_DELTA, BrokerImage, ImageDelta, MetadataImage, PartitionImage, TopicImage
from .loader import MetadataLoader
from .records import (
    BROKER_RESOURCE, TOPIC_RESOURCE, ConfigRecord, FeatureLevelRecord, FenceBrokerRecord,
    MetadataRecordError, NoOpRecord, PartitionChangeRecord, PartitionRecord,
    ProducerIdsRecord, RegisterBrokerRecord, RemoveTopicRecord, TopicRecord,
    UnfenceBrokerRecord, decode_record, decode_records, encode_record, encode_records, new_topic_id,
)

__all__ = [
    "BROKER_RESOURCE", "FULL_DELTA", "TOPIC_RESOURCE", "BrokerImage", "ConfigRecord", "FeatureLevelRecord",
    "FenceBrokerRecord", "ImageDelta", "MetadataImage", "MetadataLoader", "MetadataRecordError", "NoOpRecord",
    "PartitionChangeRecord", "PartitionImage", "PartitionRecord", "ProducerIdsRecord",
    "RegisterBrokerRecord", "RemoveTopicRecord", "TopicImage", "TopicRecord",
    "UnfenceBrokerRecord", "decode_record", "decode_records", "encode_record", "encode_records", "new_topic_id",
]
