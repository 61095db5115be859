"""Bad input against a real node process, over raw loopback sockets.

What these show: ApiVersions answers at every version we advertise and falls back to a v0
UNSUPPORTED_VERSION answer beyond them; any other unsupported API or version, an oversized
frame, and random or damaged bytes close only the connection they came on, while the node
keeps serving everyone else; a batch with a bad CRC is refused with CORRUPT_MESSAGE and
appends nothing; unknown config keys are warned about; topic auto-creation follows
``auto.create.topics.enable``.
"""

from __future__ import annotations

import datetime
import socket
import struct
import time

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from kio.schema.api_versions.v0.request import ApiVersionsRequest as ApiVersionsRequestV0
from kio.schema.api_versions.v0.response import ApiVersion as ApiVersionV0
from kio.schema.api_versions.v0.response import ApiVersionsResponse as ApiVersionsResponseV0
from kio.schema.errors import ErrorCode
from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic
from kio.schema.list_offsets.v7.request import ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData

from protocol.apis import (
    API_VERSIONS_KEY, BROKER_APIS, decode_response, encode_request, encode_response, request_class,
)
from protocol.framing import FrameBuffer
from protocol.records import RecordInput, build_batch

SOCKET_TIMEOUT_S = 10.0
FUZZ_READ_TIMEOUT_S = 0.05
LATEST_OFFSET = -1
ADVERTISED = {api.api_key: (api.advertised_min, api.advertised_max) for api in BROKER_APIS}


# --- a blocking raw-socket client, small enough to trust -----------------------------------------

def connect(bootstrap: str, timeout_s: float = SOCKET_TIMEOUT_S) -> socket.socket:
    host, _, port = bootstrap.rpartition(":")
    return socket.create_connection((host, int(port)), timeout=timeout_s)


def receive_frame(sock: socket.socket) -> bytes | None:
    """The next response frame, or None when the node closed the connection first."""
    buffer = FrameBuffer()
    while (frame := buffer.next_frame()) is None:
        data = sock.recv(1 << 16)
        if not data:
            return None
        buffer.receive_data(data)
    return frame


def call(sock: socket.socket, body, correlation_id: int = 1):
    sock.sendall(encode_request(correlation_id, "bad-input-test", body))
    frame = receive_frame(sock)
    assert frame is not None, f"expected an answer to {type(body).__name__}, the node closed the connection"
    got_id, response = decode_response(type(body).__api_key__, type(body).__version__, frame)
    assert got_id == correlation_id, f"expected correlation id {correlation_id}, got {got_id}"
    return response


def assert_closed_without_answer(sock: socket.socket, what: str) -> None:
    try:
        data = sock.recv(1 << 16)
    except ConnectionResetError:
        return
    assert data == b"", f"expected the node to close the connection after {what}, got {data[:64]!r}"


def assert_alive(node) -> None:
    assert node.is_running(), f"the node exited with {node.process.poll()}\n{node.log_tail()}"
    with connect(node.bootstrap) as sock:
        response = call(sock, ApiVersionsRequestV0(), correlation_id=77)
    assert response.error_code == ErrorCode.none, f"expected ApiVersions error 0, got {response.error_code}"


def metadata(sock, topics: list[str] | None, allow_auto: bool = True):
    wanted = None if topics is None else tuple(MetadataRequestTopic(topic_id=None, name=t) for t in topics)
    return call(sock, MetadataRequest(topics=wanted, allow_auto_topic_creation=allow_auto,
                                      include_topic_authorized_operations=False))


def produce(sock, topic: str, records: bytes):
    response = call(sock, ProduceRequest(
        transactional_id=None, acks=-1, timeout=datetime.timedelta(seconds=10),
        topic_data=(TopicProduceData(name=topic, partition_data=(
            PartitionProduceData(index=0, records=records),)),)))
    (topic_response,) = response.responses
    (partition,) = topic_response.partition_responses
    return partition


def latest_offset(sock, topic: str) -> int:
    response = call(sock, ListOffsetsRequest(replica_id=-1, isolation_level=0, topics=(
        ListOffsetsTopic(name=topic, partitions=(
            ListOffsetsPartition(partition_index=0, timestamp=LATEST_OFFSET),)),)))
    (partition,) = response.topics[0].partitions
    assert partition.error_code == ErrorCode.none, f"ListOffsets: expected no error, got {partition.error_code}"
    return partition.offset


def api_versions_request(version: int):
    cls = request_class(API_VERSIONS_KEY, version)
    if version >= 3:
        return cls(client_software_name="kraft-tests", client_software_version="1.0")
    return cls()


def raw_request(api_key: int, api_version: int, correlation_id: int, rest: bytes = b"\xff\xff") -> bytes:
    payload = struct.pack(">hhi", api_key, api_version, correlation_id) + rest
    return struct.pack(">i", len(payload)) + payload


# --- ApiVersions ---------------------------------------------------------------------------------

@pytest.mark.parametrize("version", range(0, 5))
def test_api_versions_answers_every_version_with_our_ranges(kraft_node, version):
    with connect(kraft_node.bootstrap) as sock:
        response = call(sock, api_versions_request(version), correlation_id=100 + version)
    assert response.error_code == ErrorCode.none, f"v{version}: expected error 0, got {response.error_code}"
    got = {key.api_key: (key.min_version, key.max_version) for key in response.api_keys}
    assert got == ADVERTISED, f"v{version}: expected ranges {ADVERTISED}, got {got}"


@pytest.mark.parametrize("version", [5, 99, 32767])
def test_api_versions_beyond_ours_falls_back_to_v0_unsupported_version(kraft_node, version):
    """KIP-511: the answer is a v0 body in a v0 header, whatever the request's header looks like."""
    correlation_id = 4242 + version
    expected = encode_response(API_VERSIONS_KEY, 0, correlation_id, ApiVersionsResponseV0(
        error_code=ErrorCode.unsupported_version,
        api_keys=tuple(ApiVersionV0(api_key=key, min_version=low, max_version=high)
                       for key, (low, high) in sorted(ADVERTISED.items()))))
    with connect(kraft_node.bootstrap) as sock:
        # Header v2 as a newer client would send it, then a body we cannot know.
        sock.sendall(raw_request(API_VERSIONS_KEY, version, correlation_id, b"\x00\x01c\x00\x05abc\x00"))
        frame = receive_frame(sock)
        assert frame is not None, f"v{version}: expected a fallback answer, the node closed the connection"
        got_id, body = decode_response(API_VERSIONS_KEY, 0, frame)
        assert (got_id, body.error_code) == (correlation_id, ErrorCode.unsupported_version)
        assert any(key.api_key == API_VERSIONS_KEY and (key.min_version, key.max_version) == (0, 4)
                   for key in body.api_keys), f"expected key 18 with 0..4 in {body.api_keys}"
        assert struct.pack(">i", len(frame)) + frame == expected
        # The connection stays usable: the client retries at a version we share.
        assert call(sock, ApiVersionsRequestV0(), correlation_id=5).error_code == ErrorCode.none


# --- unsupported APIs close one connection only --------------------------------------------------

@pytest.mark.parametrize(("api_key", "api_version"), [(1, 3), (0, 2), (999, 0), (3, 14), (-7, 0)],
                         ids=["Fetch-v3", "Produce-v2", "key-999", "Metadata-v14", "key-negative"])
def test_unsupported_request_closes_only_its_connection(kraft_node, api_key, api_version):
    with connect(kraft_node.bootstrap) as bystander, connect(kraft_node.bootstrap) as offender:
        assert call(bystander, ApiVersionsRequestV0(), correlation_id=1).error_code == ErrorCode.none
        offender.sendall(raw_request(api_key, api_version, 9, b"\xff\xff" + b"\x00" * 32))
        assert_closed_without_answer(offender, f"API {api_key} v{api_version}")
        assert call(bystander, ApiVersionsRequestV0(), correlation_id=2).error_code == ErrorCode.none
    assert_alive(kraft_node)


def test_decoder_crashers_close_only_their_connection(kraft_node):
    """Frames that once took the whole node down: a huge array count (kio aborts allocating
    for it) and an unknown tagged field (kio's KeyError escaped the listener)."""
    crashers = {
        "compact array of 2**32-2 topics": "0013 0005 00000001 ffff 00 ffffffff0f",
        "classic array of 2**31-1 topics": "0013 0002 00000001 ffff 7fffffff",
        "unknown tagged field in a header": "0012 0003 00000000 ffff 01 01 01 00",
    }
    for what, frame_hex in crashers.items():
        payload = bytes.fromhex(frame_hex.replace(" ", ""))
        with connect(kraft_node.bootstrap) as sock:
            sock.sendall(struct.pack(">i", len(payload)) + payload)
            assert_closed_without_answer(sock, what)
        assert_alive(kraft_node)


def test_request_over_socket_request_max_bytes_is_refused(kraft_node_factory):
    node = kraft_node_factory(overrides={"socket.request.max.bytes": "1024"})
    with connect(node.bootstrap) as bystander, connect(node.bootstrap) as offender:
        assert call(bystander, ApiVersionsRequestV0()).error_code == ErrorCode.none
        big = MetadataRequest(topics=tuple(MetadataRequestTopic(topic_id=None, name=f"t{i:04}")
                                           for i in range(100)),
                              allow_auto_topic_creation=False, include_topic_authorized_operations=False)
        wire = encode_request(3, "too-big", big)
        assert len(wire) - 4 > 1024
        offender.sendall(wire)
        assert_closed_without_answer(offender, f"a {len(wire) - 4}-byte request over a 1024-byte limit")
        assert call(bystander, ApiVersionsRequestV0(), correlation_id=2).error_code == ErrorCode.none
    # A size prefix alone is enough to refuse: the node does not wait for the body.
    with connect(node.bootstrap) as offender:
        offender.sendall(struct.pack(">i", 1025))
        assert_closed_without_answer(offender, "a 1025-byte size prefix")
    assert "exceeds the limit of 1024 bytes" in node.log_text()
    assert_alive(node)


# --- fuzzing -------------------------------------------------------------------------------------

def _seed_frames() -> list[bytes]:
    batch = build_batch([RecordInput(b"k", b"v", (), 1_700_000_000_000)])
    bodies = [
        ApiVersionsRequestV0(), api_versions_request(3),
        MetadataRequest(topics=(MetadataRequestTopic(topic_id=None, name="fuzz"),),
                        allow_auto_topic_creation=False, include_topic_authorized_operations=False),
        ProduceRequest(transactional_id=None, acks=1, timeout=datetime.timedelta(seconds=1),
                       topic_data=(TopicProduceData(name="fuzz", partition_data=(
                           PartitionProduceData(index=0, records=batch),)),)),
        ListOffsetsRequest(replica_id=-1, isolation_level=0, topics=(ListOffsetsTopic(
            name="fuzz", partitions=(ListOffsetsPartition(partition_index=0, timestamp=-1),)),)),
        FetchRequest(replica_id=-1, max_wait=datetime.timedelta(0), min_bytes=0, max_bytes=1 << 20,
                     isolation_level=0, session_id=0, session_epoch=-1, forgotten_topics_data=(),
                     rack_id="", topics=(FetchTopic(topic="fuzz", partitions=(FetchPartition(
                         partition=0, current_leader_epoch=-1, fetch_offset=0, last_fetched_epoch=-1,
                         log_start_offset=-1, partition_max_bytes=1 << 16),)),)),
    ]
    return [encode_request(index, "fuzz", body) for index, body in enumerate(bodies)]


SEED_FRAMES = _seed_frames()
INTERESTING_WORDS = [b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff", b"\x80\x00\x00\x00", b"\x00\x00\x00\x00",
                     b"\xff\xff\xff\x0f"]


@st.composite
def hostile_bytes(draw) -> bytes:
    """Random bytes, or a valid frame damaged one of the ways a broken or hostile peer would."""
    kind = draw(st.sampled_from(["random", "flip", "truncate", "size", "header", "word", "many"]))
    if kind == "random":
        return draw(st.binary(min_size=1, max_size=200))
    wire = bytearray(draw(st.sampled_from(SEED_FRAMES)))
    if kind == "flip":
        for _ in range(draw(st.integers(1, 6))):
            index = draw(st.integers(4, len(wire) - 1))
            wire[index] ^= 1 << draw(st.integers(0, 7))
    elif kind == "truncate":
        wire = wire[: draw(st.integers(0, len(wire) - 1))]
    elif kind == "size":  # the length field lies, either way
        wire[0:4] = struct.pack(">i", draw(st.integers(-(2**31), 2**31 - 1) | st.integers(0, len(wire))))
    elif kind == "header":  # any API key and version, valid or not, with this body
        wire[4:8] = struct.pack(">hh", draw(st.integers(-5, 80) | st.integers(-(2**15), 2**15 - 1)),
                                draw(st.integers(-2, 20) | st.integers(-(2**15), 2**15 - 1)))
    elif kind == "word":
        index = draw(st.integers(8, len(wire)))
        wire[index : index + 4] = draw(st.sampled_from(INTERESTING_WORDS))
    elif kind == "many":  # a valid frame, then garbage on the same connection
        wire += draw(st.binary(min_size=1, max_size=64))
    return bytes(wire)


def test_fuzz_node_survives_random_and_damaged_frames(kraft_node):
    """Property: whatever one connection sends, the node lives and serves a fresh connection."""
    started = time.monotonic()
    sent: list[bytes] = []

    # No shrinking: once the node is dead every example fails, so a shrunk example would
    # mislead; the failure names the bytes after which the node stopped answering.
    @settings(max_examples=200, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(hostile_bytes())
    def survives(data):
        sent.append(data)
        try:
            with connect(kraft_node.bootstrap) as sock:
                sock.sendall(data)
                sock.settimeout(FUZZ_READ_TIMEOUT_S)
                try:
                    while sock.recv(1 << 16):
                        pass
                except (TimeoutError, ConnectionResetError):
                    pass
            assert_alive(kraft_node)
        except (AssertionError, OSError) as error:
            # The node may die just after answering the previous example's liveness check.
            raise AssertionError(
                f"the node stopped answering at example {len(sent)}; the last bytes sent were "
                f"{sent[-2:]!r}\n{kraft_node.log_tail(20)}") from error

    survives()
    assert time.monotonic() - started < 60, "the fuzz test should stay under a minute"


# --- produce with a bad CRC ----------------------------------------------------------------------

def test_corrupt_batch_gets_corrupt_message_and_appends_nothing(kraft_node, topic_name):
    with connect(kraft_node.bootstrap) as sock:
        (topic,) = metadata(sock, [topic_name]).topics
        assert topic.error_code == ErrorCode.none, f"auto-create: expected no error, got {topic.error_code}"
        good = produce(sock, topic_name, build_batch([RecordInput(b"k", b"first", (), 1)]))
        assert (good.error_code, good.base_offset) == (ErrorCode.none, 0)
        end_before = latest_offset(sock, topic_name)
        assert end_before == 1

        batch = bytearray(build_batch([RecordInput(b"k", b"second", (), 2)]))
        batch[-1] ^= 0x01  # the last value byte: covered by the CRC, which no longer matches
        bad = produce(sock, topic_name, bytes(batch))
        assert bad.error_code == ErrorCode.corrupt_message, f"expected CORRUPT_MESSAGE (2), got {bad.error_code}"
        assert bad.error_code.value == 2
        assert latest_offset(sock, topic_name) == end_before, "a corrupt batch moved the log end offset"

        after = produce(sock, topic_name, build_batch([RecordInput(b"k", b"third", (), 3)]))
        assert (after.error_code, after.base_offset) == (ErrorCode.none, end_before)


# --- fetch errors --------------------------------------------------------------------------------

def test_fetch_errors_carry_empty_records_not_null(kraft_node, topic_name):
    """Kafka answers a partition's fetch error with empty records, never null: librdkafka
    rejects a null record set as a protocol parse failure and drops the whole response, so its
    consumer never sees the error (a fenced epoch, a moved leader) that would send it elsewhere."""
    with connect(kraft_node.bootstrap) as sock:
        (topic,) = metadata(sock, [topic_name]).topics
        assert topic.error_code == ErrorCode.none, f"auto-create: expected no error, got {topic.error_code}"
        wanted = {"fenced epoch": (topic_name, 0, 999), "unknown partition": (topic_name, 7, -1)}
        for what, (name, partition, epoch) in wanted.items():
            response = call(sock, FetchRequest(
                replica_id=-1, max_wait=datetime.timedelta(0), min_bytes=0, max_bytes=1 << 20, isolation_level=0,
                session_id=0, session_epoch=-1, forgotten_topics_data=(), rack_id="",
                topics=(FetchTopic(topic=name, partitions=(FetchPartition(
                    partition=partition, current_leader_epoch=epoch, fetch_offset=0, last_fetched_epoch=-1,
                    log_start_offset=-1, partition_max_bytes=1 << 16),)),)))
            (answer,) = response.responses[0].partitions
            assert answer.error_code != ErrorCode.none, f"{what}: expected an error, got none"
            assert answer.records == b"", f"{what}: expected empty records with the error, got {answer.records!r}"


# --- config --------------------------------------------------------------------------------------

def test_unknown_config_key_is_warned_about_and_the_node_starts(kraft_node_factory):
    node = kraft_node_factory(overrides={"foo.bar": "1"})
    assert "The configuration 'foo.bar' was supplied but isn't a known config." in node.log_text()
    assert_alive(node)


# --- auto-creation -------------------------------------------------------------------------------

def test_metadata_auto_creates_a_missing_topic_by_default(kraft_node, topic_name):
    with connect(kraft_node.bootstrap) as sock:
        (topic,) = metadata(sock, [topic_name]).topics
        assert topic.error_code == ErrorCode.none, f"expected the topic created, got {topic.error_code}"
        assert [p.partition_index for p in topic.partitions] == [0]
        assert topic_name in {t.name for t in metadata(sock, None).topics}
        assert produce(sock, topic_name, build_batch([RecordInput(None, b"v", (), 1)])).error_code == ErrorCode.none


def test_metadata_without_permission_to_create_does_not_create(kraft_node, topic_name):
    with connect(kraft_node.bootstrap) as sock:
        (topic,) = metadata(sock, [topic_name], allow_auto=False).topics
        assert topic.error_code == ErrorCode.unknown_topic_or_partition
        assert topic_name not in {t.name for t in metadata(sock, None).topics}


def test_auto_create_disabled_answers_unknown_topic_and_creates_nothing(kraft_node_factory, topic_name):
    node = kraft_node_factory(overrides={"auto.create.topics.enable": "false"})
    with connect(node.bootstrap) as sock:
        (topic,) = metadata(sock, [topic_name]).topics
        assert topic.error_code == ErrorCode.unknown_topic_or_partition, (
            f"expected UNKNOWN_TOPIC_OR_PARTITION, got {topic.error_code}")
        # Produce never creates topics, in Kafka or here; it answers per partition.
        partition = produce(sock, topic_name, build_batch([RecordInput(None, b"v", (), 1)]))
        assert partition.error_code == ErrorCode.unknown_topic_or_partition
        assert topic_name not in {t.name for t in metadata(sock, None).topics}
    assert not any(topic_name in path.name for path in node.data_dir.iterdir())
