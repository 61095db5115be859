"""The API table and codec: every request and response kraft advertises round-trips through
our framing and headers, known frames have exact bytes, and no bytes a peer can send make the
decoder raise anything but the peer's-fault errors (the broker maps those to closing one
connection; anything else, or a native abort, would take the node down)."""

from __future__ import annotations

import datetime
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kio.schema.api_versions.v0.request import ApiVersionsRequest as ApiVersionsRequestV0
from kio.schema.api_versions.v0.response import ApiVersion as ApiVersionV0
from kio.schema.api_versions.v0.response import ApiVersionsResponse as ApiVersionsResponseV0
from kio.schema.api_versions.v3.request import ApiVersionsRequest as ApiVersionsRequestV3
from kio.schema.api_versions.v3.response import ApiVersion as ApiVersionV3
from kio.schema.api_versions.v3.response import ApiVersionsResponse as ApiVersionsResponseV3
from kio.schema.errors import ErrorCode
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
from kio.static.primitive import i32Timedelta, Records, i64Timedelta

from protocol.apis import (
    API_VERSIONS_KEY, BROKER_APIS, MalformedRequest, UnsupportedRequest, decode_request,
    decode_response, encode_request, encode_response, peek_header, request_class, response_class,
)
from protocol import bounds
from protocol.framing import RemoteProtocolError

# kio registers strategies for its primitive types; record sets are opaque bytes to the codec.
st.register_type_strategy(Records, st.binary(max_size=64).map(Records))
# kio's own i64 duration strategy reaches datetime.timedelta's limits, but its reader holds a
# duration as int64 microseconds, so it refuses milliseconds beyond about 9.2e15 (292,000
# years), and it converts through a float, so above 2**53 microseconds (about 285 years) it
# is off by a millisecond. Draw only what kio reads back exactly; a client sending
# Long.MAX_VALUE ms is refused (see the closing note of the protocol issue).
I64_TIMEDELTA_MS_MAX = 2**53 // 1000
st.register_type_strategy(i64Timedelta, st.integers(-I64_TIMEDELTA_MS_MAX, I64_TIMEDELTA_MS_MAX).map(
    lambda ms: i64Timedelta.parse(datetime.timedelta(milliseconds=ms))))
# On the wire a duration is whole milliseconds; kio's own strategy draws sub-millisecond
# values that cannot survive a round trip (302.6 ms comes back as 303 ms).
st.register_type_strategy(i32Timedelta, st.integers(-(2**31), 2**31 - 1).map(
    lambda ms: i32Timedelta.parse(datetime.timedelta(milliseconds=ms))))

APIS = {api.api_key: api for api in BROKER_APIS}
IMPLEMENTED = [
    (api.api_key, version)
    for api in BROKER_APIS
    for version in range(api.implemented_min, api.advertised_max + 1)
]
IDS = [f"{APIS[key].name}-v{version}" for key, version in IMPLEMENTED]
# Each (API, version) draws a few values; across ~100 versions and both directions that is
# about a thousand distinct messages in a few seconds.
CODEC_SETTINGS = settings(max_examples=6, deadline=None, database=None,
                          suppress_health_check=list(HealthCheck))
correlation_ids = st.integers(-(2**31), 2**31 - 1)
client_ids = st.none() | st.text(max_size=20)


def test_table_is_sorted_unique_and_consistent():
    keys = [api.api_key for api in BROKER_APIS]
    assert keys == sorted(set(keys)), f"expected sorted unique API keys, got {keys}"
    for api in BROKER_APIS:
        assert 0 <= api.advertised_min <= api.implemented_min <= api.advertised_max, api
        assert api.implements(api.advertised_max) and not api.implements(api.advertised_max + 1)


@pytest.mark.parametrize(("api_key", "api_version"), IMPLEMENTED, ids=IDS)
def test_request_round_trip(api_key, api_version):
    cls = request_class(api_key, api_version)
    assert (cls.__api_key__, cls.__version__) == (api_key, api_version)

    @CODEC_SETTINGS
    @given(st.from_type(cls), correlation_ids, client_ids)
    def round_trip(body, correlation_id, client_id):
        wire = encode_request(correlation_id, client_id, body)
        assert struct.unpack_from(">i", wire)[0] == len(wire) - 4
        assert peek_header(wire[4:]) == (api_key, api_version, correlation_id)
        request = decode_request(wire[4:], APIS)
        assert (request.api_key, request.api_version, request.correlation_id) == (
            api_key, api_version, correlation_id)
        assert request.client_id == client_id
        assert request.body == body, f"expected {body!r}, decoded {request.body!r}"

    round_trip()


@pytest.mark.parametrize(("api_key", "api_version"), IMPLEMENTED, ids=IDS)
def test_response_round_trip(api_key, api_version):
    cls = response_class(api_key, api_version)

    @CODEC_SETTINGS
    @given(st.from_type(cls), correlation_ids)
    def round_trip(body, correlation_id):
        wire = encode_response(api_key, api_version, correlation_id, body)
        assert struct.unpack_from(">i", wire)[0] == len(wire) - 4
        got_id, decoded = decode_response(api_key, api_version, wire[4:])
        assert got_id == correlation_id
        assert decoded == body, f"expected {body!r}, decoded {decoded!r}"

    round_trip()


# --- exact bytes -------------------------------------------------------------------------------

def test_api_versions_v0_request_bytes():
    wire = encode_request(1, "c", ApiVersionsRequestV0())
    #                  size         key    version  correlation  client_id "c"
    assert wire == bytes.fromhex("0000000b" "0012" "0000" "00000001" "0001" "63")


def test_api_versions_v0_fallback_response_bytes():
    """The answer to an ApiVersions version we do not know: v0 body, header v0 (KIP-511)."""
    body = ApiVersionsResponseV0(
        error_code=ErrorCode.unsupported_version,
        api_keys=(ApiVersionV0(api_key=18, min_version=0, max_version=4),),
    )
    wire = encode_response(API_VERSIONS_KEY, 0, 7, body)
    assert wire == bytes.fromhex(
        "00000010"  # size 16
        "00000007"  # correlation id
        "0023"  # error 35 UNSUPPORTED_VERSION
        "00000001" "0012" "0000" "0004"  # one key: 18, versions 0..4
    )


def test_api_versions_v3_response_keeps_header_v0():
    """A flexible ApiVersions response still has no tagged fields in its header."""
    body = ApiVersionsResponseV3(
        error_code=ErrorCode.none,
        api_keys=(ApiVersionV3(api_key=18, min_version=0, max_version=4),),
        throttle_time=datetime.timedelta(0),
    )
    wire = encode_response(API_VERSIONS_KEY, 3, 9, body)
    assert wire == bytes.fromhex(
        "00000013"  # size 19
        "00000009"  # correlation id, then straight to the body
        "0000"  # error none
        "02" "0012" "0000" "0004" "00"  # compact array of one key, its tagged fields
        "00000000"  # throttle time
        "00"  # body tagged fields
    )
    assert decode_response(API_VERSIONS_KEY, 3, wire[4:]) == (9, body)


def test_api_versions_v3_request_bytes():
    body = ApiVersionsRequestV3(client_software_name="k", client_software_version="1")
    wire = encode_request(2, "c", body)
    assert wire == bytes.fromhex(
        "00000011"  # size 17
        "0012" "0003" "00000002"  # key, version, correlation id
        "0001" "63" "00"  # header v2: client_id is a classic string, then tagged fields
        "026b" "0231" "00"  # compact strings "k" and "1", tagged fields
    )


def test_metadata_v12_request_bytes():
    body = MetadataRequest(
        topics=(MetadataRequestTopic(topic_id=None, name="t"),),
        allow_auto_topic_creation=True, include_topic_authorized_operations=False,
    )
    wire = encode_request(3, None, body)
    assert wire == bytes.fromhex(
        "00000022"  # size 34
        "0003" "000c" "00000003" "ffff" "00"  # header v2 with a null client id
        "02" + "00" * 16 + "02" "74" "00"  # one topic: null uuid (zeros), "t", tagged fields
        "01" "00" "00"  # allow auto creation, no authorized operations, tagged fields
    )
    assert decode_request(wire[4:], APIS).body == body


# --- refusals ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("api_key", "api_version"), [
    (999, 0), (0, 2), (0, 13), (1, 3), (18, 5), (18, 99), (3, -1), (44, 2), (-1, 0),
])
def test_unimplemented_api_or_version_is_unsupported(api_key, api_version):
    frame = struct.pack(">hhih", api_key, api_version, 42, -1)
    with pytest.raises(UnsupportedRequest) as raised:
        decode_request(frame, APIS)
    error = raised.value
    assert (error.api_key, error.api_version, error.correlation_id) == (api_key, api_version, 42)
    assert isinstance(error, RemoteProtocolError)


def test_frame_shorter_than_a_header_is_malformed():
    with pytest.raises(MalformedRequest):
        decode_request(b"\x00\x12\x00", APIS)


@pytest.mark.parametrize("frame_hex", [
    # CreateTopics v5 declaring 2**32 - 2 topics in no bytes: kio would reserve 34 GB and abort.
    "0013 0005 00000001 ffff 00 ffffffff0f",
    # CreateTopics v2 (classic) declaring 2**31 - 1 topics: 16 GB, fatal on a smaller machine.
    "0013 0002 00000001 ffff 7fffffff",
    # Produce v9 with one topic whose partition array declares 2**28 entries.
    "0000 0009 00000001 ffff 00 00 ffff 00007530 02 0274 8080808001",
    # Metadata v1 with 2**31 - 1 topic names.
    "0003 0001 00000001 ffff 7fffffff",
])
def test_array_counts_beyond_the_frame_are_malformed(frame_hex):
    with pytest.raises(MalformedRequest, match="elements"):
        decode_request(bytes.fromhex(frame_hex.replace(" ", "")), APIS)


def test_unknown_tagged_field_is_malformed_not_a_crash():
    """kio raises KeyError for a tag it does not know; that must stay the peer's fault."""
    # ApiVersions v3 whose header carries tagged field 1 (size 1, value 0).
    frame = bytes.fromhex("0012 0003 00000000 ffff 01 01 01 00".replace(" ", ""))
    with pytest.raises(MalformedRequest):
        decode_request(frame, APIS)


@pytest.mark.parametrize(("api_key", "api_version"), IMPLEMENTED, ids=IDS)
def test_array_count_walk_knows_every_field_of_every_request_schema(api_key, api_version):
    """The walk plans each entity lazily; plan them all here so an unknown type fails now."""
    pending, seen = [request_class(api_key, api_version)], set()
    while pending:
        cls = pending.pop()
        if cls in seen:
            continue
        seen.add(cls)
        ordered, tagged = bounds._plan(cls)
        pending.extend(step.entity for step in (*ordered, *tagged.values()) if step.entity)


# --- fuzzing the decoder in-process ------------------------------------------------------------

@st.composite
def damaged_frames(draw) -> bytes:
    """A valid request frame, then bit flips, truncation, overwritten words or a random tail."""
    api_key, api_version = draw(st.sampled_from(IMPLEMENTED))
    body = draw(st.from_type(request_class(api_key, api_version)))
    wire = bytearray(encode_request(draw(correlation_ids), draw(client_ids), body)[4:])
    damage = draw(st.sampled_from(["flip", "truncate", "overwrite", "tail", "none"]))
    if damage == "flip":
        for _ in range(draw(st.integers(1, 4))):
            index = draw(st.integers(0, len(wire) - 1))
            wire[index] ^= 1 << draw(st.integers(0, 7))
    elif damage == "truncate":
        wire = wire[: draw(st.integers(0, len(wire)))]
    elif damage == "overwrite":
        index = draw(st.integers(0, len(wire)))
        wire[index : index + 4] = draw(st.sampled_from(
            [b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff", b"\xff\xff\xff\x0f", b"\x80\x00\x00\x00"])
            | st.binary(min_size=4, max_size=4))
    elif damage == "tail":
        wire = wire[:10] + draw(st.binary(max_size=64))
    return bytes(wire)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(damaged_frames())
def test_damaged_frames_decode_or_are_the_peers_fault(frame):
    try:
        decode_request(frame, APIS)
    except (MalformedRequest, UnsupportedRequest):
        pass
