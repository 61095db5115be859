"""kraft, the node: each part of the KRaft design in one place.

- ``raft``: the metadata quorum (pure core, its trio driver, disk log and transport);
- ``metadata``: the records, the immutable image and the deltas that records make;
- ``controller``: the active controller (record logic, broker lifecycle, its runtime, the
  channel brokers reach it by);
- ``broker``: the Kafka APIs and the partitions served from the image; ``group``: the
  consumer group coordinator;
- ``server``: the process (node, quorum member, listeners, life cycle); ``sim``: the whole
  quorum on virtual time;
- ``config``, ``properties``, ``meta_properties``: the configuration and the storage identity
  every part reads.
kraft imports protocol and storage, never tools.
"""
