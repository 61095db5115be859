"""Controller rules for broker registration, heartbeats and fencing."""

from __future__ import annotations

from kio.schema.errors import ErrorCode

from kraft.controller.cluster_control import BrokerLifecycle
from kraft.metadata import MetadataImage, PartitionRecord, TopicRecord, new_topic_id

ENDPOINTS = (("PLAINTEXT", "localhost", 9092, "PLAINTEXT"),)


def apply(image: MetadataImage, records: list) -> MetadataImage:
    """One write is one log entry."""
    return image.apply(records, image.offset + 1)


def registered(lifecycle: BrokerLifecycle, *broker_ids: int, now_ms: int = 0) -> MetadataImage:
    image = MetadataImage()
    for broker_id in broker_ids:
        error, records, epoch = lifecycle.register(image, broker_id, f"inc-{broker_id}", ENDPOINTS, None,
                                                   image.offset + 1, now_ms)
        assert error == ErrorCode.none
        image = apply(image, records)
        answer, records = lifecycle.heartbeat(image, broker_id, epoch, image.offset, False, False, now_ms)
        assert answer.is_caught_up and not answer.is_fenced
        image = apply(image, records)
    return image


def test_registration_starts_fenced_and_a_caught_up_heartbeat_unfences():
    lifecycle = BrokerLifecycle(9000)
    error, records, epoch = lifecycle.register(MetadataImage(), 1, "inc", ENDPOINTS, "rack-a", 10, 0)
    image = MetadataImage().apply(records, 10)
    assert error == ErrorCode.none and epoch == 10 and image.brokers[1].fenced
    behind, none = lifecycle.heartbeat(image, 1, epoch, 9, False, False, 100)
    assert behind.is_fenced and not behind.is_caught_up and none == []
    answer, records = lifecycle.heartbeat(image, 1, epoch, 10, False, False, 200)
    assert answer.is_caught_up and not answer.is_fenced
    assert not apply(image, records).brokers[1].fenced
    assert lifecycle.heartbeat(image, 1, epoch - 1, 10, False, False, 300)[0].error_code == ErrorCode.stale_broker_epoch
    assert lifecycle.heartbeat(image, 2, 0, 10, False, False, 300)[0].error_code == ErrorCode.broker_id_not_registered


def test_a_second_incarnation_is_refused_while_the_first_is_alive():
    lifecycle = BrokerLifecycle(9000)
    image = registered(lifecycle, 1, now_ms=0)
    error, _, _ = lifecycle.register(image, 1, "other", ENDPOINTS, None, image.offset + 1, 5000)
    assert error == ErrorCode.duplicate_broker_registration
    error, records, epoch = lifecycle.register(image, 1, "other", ENDPOINTS, None, image.offset + 1, 9000)
    assert error == ErrorCode.none and epoch > image.brokers[1].broker_epoch
    assert apply(image, records).brokers[1].fenced


def test_expired_sessions_fence_and_move_leadership_to_another_in_sync_replica():
    lifecycle = BrokerLifecycle(9000)
    image = registered(lifecycle, 1, 2, 3, now_ms=0)
    topic_id = new_topic_id()
    image = apply(image, [TopicRecord("t", topic_id), PartitionRecord(topic_id, 0, (1, 2), (1, 2), 1),
                          PartitionRecord(topic_id, 1, (1,), (1,), 1), PartitionRecord(topic_id, 2, (3, 1), (3, 1), 3)])
    for broker_id in (2, 3):
        answer, _ = lifecycle.heartbeat(image, broker_id, image.brokers[broker_id].broker_epoch,
                                        image.offset, False, False, 8000)
        assert answer.error_code == ErrorCode.none
    assert lifecycle.expired(image, 8999) == []
    image = apply(image, lifecycle.expired(image, 9000))
    assert image.brokers[1].fenced and not image.brokers[2].fenced
    partitions = image.topic("t").partitions
    assert (partitions[0].leader, partitions[0].isr, partitions[0].leader_epoch) == (2, (2,), 1)
    assert (partitions[1].leader, partitions[1].isr) == (-1, (1,)), "no other replica: offline, ISR kept"
    assert (partitions[2].leader, partitions[2].isr) == (3, (3,))
    answer, records = lifecycle.heartbeat(image, 1, image.brokers[1].broker_epoch, image.offset, False, False, 20000)
    image = apply(image, records)
    assert not answer.is_fenced and image.topic("t").partitions[1].leader == 1, "the returning replica leads again"


def test_a_broker_that_asks_to_shut_down_is_fenced_and_told_to_go():
    lifecycle = BrokerLifecycle(9000)
    image = registered(lifecycle, 1, 2)
    answer, records = lifecycle.heartbeat(image, 2, image.brokers[2].broker_epoch, image.offset, False, True, 10)
    assert answer.should_shut_down and answer.is_fenced
    assert apply(image, records).brokers[2].fenced


def test_a_new_incarnation_waits_out_the_old_session_unless_it_is_the_controllers_own_node():
    from kio.schema.errors import ErrorCode

    from kraft.controller.cluster_control import BrokerLifecycle
    from kraft.metadata import MetadataImage, RegisterBrokerRecord

    endpoints = (("PLAINTEXT", "localhost", 9092, "PLAINTEXT"),)
    image = MetadataImage().apply([RegisterBrokerRecord(1, "before-the-crash", 0, endpoints, None, fenced=False)], 0)
    lifecycle = BrokerLifecycle(9000)
    lifecycle.last_heartbeat_ms[1] = 1_000  # a session that is still alive at 2_000
    error, records, _ = lifecycle.register(image, 1, "after-the-crash", endpoints, None, 1, 2_000)
    assert (error, records) == (ErrorCode.duplicate_broker_registration, [])
    error, records, epoch = lifecycle.register(image, 1, "after-the-crash", endpoints, None, 1, 2_000,
                                               from_this_node=True)
    assert error == ErrorCode.none and records[-1].incarnation_id == "after-the-crash" and epoch == 1
    assert [type(r).__name__ for r in records] == ["FenceBrokerRecord", "RegisterBrokerRecord"]  # one entry, at 1


def test_a_partition_whose_isr_is_gone_waits_for_it_unless_unclean_election_is_enabled():
    from kraft.metadata import ConfigRecord, TOPIC_RESOURCE

    for unclean_default, topic_override, expected_leader in ((False, None, -1), (True, None, 2),
                                                             (False, "true", 2), (True, "false", -1)):
        lifecycle = BrokerLifecycle(9000, unclean_leader_election=unclean_default)
        image = registered(lifecycle, 1, 2, now_ms=0)
        topic_id = new_topic_id()
        records = [TopicRecord("t", topic_id), PartitionRecord(topic_id, 0, (1, 2), (1,), 1)]
        if topic_override is not None:
            records.append(ConfigRecord(TOPIC_RESOURCE, "t", "unclean.leader.election.enable", topic_override))
        image = apply(image, records)
        image = apply(image, lifecycle.fence(image, 1))
        partition = image.topic("t").partitions[0]
        assert partition.leader == expected_leader, (unclean_default, topic_override)
        assert partition.isr == ((2,) if expected_leader == 2 else (1,))


def test_an_unfenced_replica_outside_the_isr_takes_a_leaderless_partition_only_if_unclean_is_allowed():
    for unclean, expected in ((False, -1), (True, 2)):
        lifecycle = BrokerLifecycle(9000, unclean_leader_election=unclean)
        image = registered(lifecycle, 1, 2, now_ms=0)
        topic_id = new_topic_id()
        image = apply(image, [TopicRecord("t", topic_id), PartitionRecord(topic_id, 0, (1, 2), (1,), 1)])
        image = apply(image, lifecycle.fence(image, 2))  # the follower first: no one to take over
        image = apply(image, lifecycle.fence(image, 1))
        assert image.topic("t").partitions[0].leader == -1
        image = apply(image, lifecycle.unfence(image, 2))
        partition = image.topic("t").partitions[0]
        assert partition.leader == expected and partition.isr == ((2,) if expected == 2 else (1,))
