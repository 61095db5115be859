"""kraft.raft.net: the KRaft RPCs over TCP between controllers.

Three controllers, each a RaftDriver on a DiskRaftLog with a RaftNetwork and a controller
Listener on 127.0.0.1, talk over real sockets on the real clock: a leader is elected,
appends commit on all three, and when the leader's listener, network and driver stop, the
two others elect a new leader that keeps every committed entry. Bad frames get an error
answer or close only their own connection. Smaller tests pin the transport's rules: a
parked Fetch does not hold a Vote back, a lane reconnects once its peer comes up, queues
drop their oldest request, and an unanswered inbound request is answered REQUEST_TIMED_OUT.
"""

from __future__ import annotations

import datetime
import random
from pathlib import Path

import trio
import trio.testing
from kio.schema.api_versions.v3 import response as api_versions_response
from kio.schema.errors import ErrorCode

from kraft.server.network import ConnectionInfo, Listener
from kraft.raft import messages as m
from kraft.raft.disk_log import DiskRaftLog
from kraft.raft.driver import RaftDriver
from kraft.raft.log import Entry
from kraft.raft.net import FETCH_LANE, QUORUM_LANE, RAFT_API_KEYS, RECONNECT_BACKOFF_MAX_MS, RaftNetwork
from kraft.raft.ready import RaftConfig
from kraft.raft.wire import RAFT_API_RANGES, RaftWire
from protocol import apis
from protocol.framing import FrameBuffer
from tests.support.raft import the_leader, wait_for

VOTERS = (0, 1, 2)
CLUSTER_ID = "MkU3OEVBNTcwNTJENDM2Qk"
HOST = "127.0.0.1"
FRAME_BYTES_MAX = 1 << 24
ELECTION_LIMIT_S = 6  # fetch timeout 2 s, then a pre-vote and a vote with 1-2 s timeouts
TEST_LIMIT_S = 25


def api_versions_answer(frame: bytes) -> bytes:
    """What the controller listener answers Connection.open's ApiVersions v3 with."""
    request = apis.decode_request(frame, {apis.API_VERSIONS_KEY: apis.ApiRange(apis.API_VERSIONS_KEY, 3, 3, 3)})
    ranges = [*RAFT_API_RANGES.values(), apis.ApiRange(apis.API_VERSIONS_KEY, 0, 4, 0)]
    body = api_versions_response.ApiVersionsResponse(
        error_code=ErrorCode.none, throttle_time=datetime.timedelta(0),
        api_keys=tuple(api_versions_response.ApiVersion(api_key=r.api_key, min_version=r.advertised_min,
                                                        max_version=r.advertised_max)
                       for r in sorted(ranges, key=lambda r: r.api_key)))
    return apis.encode_response(apis.API_VERSIONS_KEY, 3, request.correlation_id, body)


def controller_dispatch(network_of):
    """A controller listener's dispatch: Raft frames to the network, ApiVersions here."""
    async def dispatch(frame: bytes, info: ConnectionInfo) -> bytes:
        api_key, api_version, correlation_id = apis.peek_header(frame)
        if api_key in RAFT_API_KEYS:
            return await network_of().handle_frame(frame)
        if api_key == apis.API_VERSIONS_KEY:
            return api_versions_answer(frame)
        raise apis.UnsupportedRequest(api_key, api_version, correlation_id)
    return dispatch


class Controller:
    """One controller: its listener, and once the endpoints are known, its network and driver."""

    def __init__(self, node_id: int, directory: Path) -> None:
        self.node_id = node_id
        self.directory = directory
        self.listener = Listener(node_id, "CONTROLLER", HOST, 0, controller_dispatch(lambda: self.network),
                                 FRAME_BYTES_MAX)
        self.endpoints: dict[int, tuple[str, int]] = {}
        self.endpoints_known = trio.Event()
        self.network: RaftNetwork | None = None
        self.driver: RaftDriver | None = None
        self.scope: trio.CancelScope | None = None
        self.running = False
        self.applied: list[Entry] = []

    async def serve(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        disk = None
        try:
            with trio.CancelScope() as self.scope:
                async with trio.open_nursery() as nursery:
                    bound = await nursery.start(self.listener.run)
                    task_status.started(bound.port)
                    await self.endpoints_known.wait()
                    disk = DiskRaftLog.open(str(self.directory))
                    config = RaftConfig()
                    self.network = RaftNetwork(self.node_id, self.endpoints, RaftWire(self.node_id, CLUSTER_ID),
                                               request_timeout_ms=config.request_timeout_ms)
                    self.driver = RaftDriver(self.node_id, frozenset(VOTERS), disk, self.network, config=config,
                                             rng=random.Random(self.node_id), on_commit=self.applied.extend)
                    self.network.attach(self.driver)
                    await nursery.start(self.network.run)
                    await nursery.start(self.driver.run)
                    self.running = True
        finally:
            self.running = False
            if disk is not None:
                disk.close()

    def data(self) -> list[tuple[int, int, bytes]]:
        return [(e.offset, e.epoch, e.payload) for e in self.applied if not e.control]


def run_cluster(tmp_path: Path, scenario) -> None:
    async def main() -> None:
        controllers = [Controller(n, tmp_path / f"node-{n}" / "__cluster_metadata-0") for n in VOTERS]
        async with trio.open_nursery() as nursery:
            ports = {}
            for controller in controllers:
                controller.directory.parent.mkdir(parents=True)
                ports[controller.node_id] = await nursery.start(controller.serve)
            for controller in controllers:  # the voter endpoints, now that every port is bound
                controller.endpoints = {n: (HOST, port) for n, port in ports.items()}
                controller.endpoints_known.set()
            with trio.fail_after(TEST_LIMIT_S):
                await scenario(controllers)
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_elect_commit_and_fail_over_on_real_sockets(tmp_path):
    async def scenario(controllers):
        await wait_for(lambda: the_leader(controllers) is not None, ELECTION_LIMIT_S, "a first leader")
        first = the_leader(controllers)
        offsets = [await first.driver.append(b"entry-%d" % i) for i in range(5)]
        assert offsets == sorted(offsets) and len(set(offsets)) == 5, offsets
        await wait_for(lambda: all(len(c.data()) == 5 for c in controllers), 2, "5 entries applied on all three")
        committed = first.data()
        assert all(c.data() == committed for c in controllers), [c.data() for c in controllers]

        # The leader's listener, network and driver stop together, as a crashed process would.
        old_epoch = first.driver.epoch
        first.scope.cancel()
        await wait_for(lambda: not first.running, 1, "the old leader to stop")
        others = [c for c in controllers if c is not first]
        took_s = await wait_for(lambda: the_leader(others) is not None, ELECTION_LIMIT_S, "a new leader")
        second = the_leader(others)
        assert second.driver.epoch > old_epoch, (second.driver.epoch, old_epoch)
        assert second.data()[:5] == committed, "the new leader lost a committed entry"
        later = await second.driver.append(b"later")
        assert later > offsets[-1], (later, offsets)
        await wait_for(lambda: all(len(c.data()) == 6 for c in others), 2, "the new entry on the two left")
        assert all(c.data()[:5] == committed for c in others)
        print(f"fail-over took {took_s:.2f} s")

    run_cluster(tmp_path, scenario)


async def receive_frame(stream: trio.SocketStream, frames: FrameBuffer) -> bytes | None:
    """The next response frame, or None once the listener closed the connection."""
    while (frame := frames.next_frame()) is None:
        data = await stream.receive_some(1 << 16)
        if not data:
            return None
        frames.receive_data(data)
    return frame


def test_bad_frames_get_an_error_or_close_only_their_connection(tmp_path):
    async def scenario(controllers):
        await wait_for(lambda: the_leader(controllers) is not None, ELECTION_LIMIT_S, "a first leader")
        target = controllers[0]
        port = target.endpoints[target.node_id][1]
        vote = m.Message(2, target.node_id, 1_000_001, m.VoteRequest(0, 2, 0, 0, pre_vote=True))

        # A request for another cluster is the peer's fault: answered, connection kept.
        stream = await trio.open_tcp_stream(HOST, port)
        frames = FrameBuffer()
        await stream.send_all(RaftWire(2, "another-cluster").encode_request(vote))
        correlation_id, body = apis.decode_response(52, 2, await receive_frame(stream, frames))
        assert (correlation_id, body.error_code) == (1_000_001, ErrorCode.inconsistent_cluster_id), body
        # A truncated frame closes that connection.
        whole = RaftWire(2, CLUSTER_ID).encode_request(vote)[4:]
        await stream.send_all(len(whole[:-7]).to_bytes(4, "big") + whole[:-7])
        assert await receive_frame(stream, frames) is None, "expected the truncated frame to close the connection"
        await stream.aclose()

        # So do garbage after a Raft header and an unsupported Vote version.
        for payload in [b"\x00\x34\x00\x02\x00\x00\x00\x09" + bytes(range(40)),
                        b"\x00\x34\x00\x00\x00\x00\x00\x0a\xff\xff"]:
            async with await trio.open_tcp_stream(HOST, port) as stream:
                await stream.send_all(len(payload).to_bytes(4, "big") + payload)
                assert await receive_frame(stream, FrameBuffer()) is None, payload

        # A new connection is served, and the quorum kept working throughout.
        async with await trio.open_tcp_stream(HOST, port) as stream:
            await stream.send_all(RaftWire(2, CLUSTER_ID).encode_request(vote))
            correlation_id, body = apis.decode_response(52, 2, await receive_frame(stream, FrameBuffer()))
            assert correlation_id == 1_000_001 and body.error_code == ErrorCode.none, body
            assert not body.topics[0].partitions[0].vote_granted, "a stale pre-vote was granted"
        leader = the_leader(controllers)
        await leader.driver.append(b"still working")
        await wait_for(lambda: all(len(c.data()) == 1 for c in controllers), 2, "the entry applied on all three")

    run_cluster(tmp_path, scenario)


class RecordingDriver:
    """Stands in for a RaftDriver: records what the network delivers, and when."""

    def __init__(self, local_id: int, inbox_max: int = 100) -> None:
        self.local_id = local_id
        self.inbox_max = inbox_max
        self.delivered: list[tuple[float, m.Message]] = []
        self.dropped_messages = 0

    def deliver(self, message: m.Message) -> None:
        if len(self.delivered) >= self.inbox_max:
            self.dropped_messages += 1
            return
        self.delivered.append((trio.current_time(), message))


def peer_dispatch(fetch_delay_s: float):
    """Node 1 as a leader that parks every Fetch for ``fetch_delay_s`` and grants every Vote."""
    wire = RaftWire(1, CLUSTER_ID)

    async def dispatch(frame: bytes, info: ConnectionInfo) -> bytes:
        if apis.peek_header(frame)[0] == apis.API_VERSIONS_KEY:
            return api_versions_answer(frame)
        request = wire.decode_request(frame)
        if isinstance(request.body, m.FetchRequest):
            await trio.sleep(fetch_delay_s)
            body = m.FetchResponse(m.Error.NONE, 1, 1, 0)
        else:
            body = m.VoteResponse(m.Error.NONE, None, 1, True, False)
        return wire.encode_response(m.Message(1, request.source, request.correlation_id, body))
    return dispatch


def test_a_parked_fetch_does_not_hold_back_a_vote():
    async def main() -> None:
        async with trio.open_nursery() as nursery:
            peer = Listener(1, "CONTROLLER", HOST, 0, peer_dispatch(fetch_delay_s=0.5), FRAME_BYTES_MAX)
            bound = await nursery.start(peer.run)
            network = RaftNetwork(0, {0: (HOST, 1), 1: (HOST, bound.port)}, RaftWire(0, CLUSTER_ID))
            driver = RecordingDriver(0)
            network.attach(driver)
            await nursery.start(network.run)
            start = trio.current_time()
            network.send(m.Message(0, 1, 1, m.FetchRequest(0, 1, 0, 0)))
            await trio.sleep(0.05)  # the Fetch is parked at the peer by now
            network.send(m.Message(0, 1, 2, m.VoteRequest(1, 0, 0, 0, pre_vote=False)))
            await wait_for(lambda: len(driver.delivered) == 2, 2, "both answers")
            (vote_s, vote), (fetch_s, fetch) = driver.delivered
            assert isinstance(vote.body, m.VoteResponse) and isinstance(fetch.body, m.FetchResponse), driver.delivered
            assert vote_s - start < 0.3 <= fetch_s - start, (vote_s - start, fetch_s - start)
            assert (vote.source, vote.destination, vote.correlation_id) == (1, 0, 2), vote
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_a_lane_reconnects_once_its_peer_comes_up():
    async def main() -> None:
        async with trio.open_nursery() as nursery:
            async with trio.open_nursery() as probe:  # a free port, then nobody listening on it
                port = (await probe.start(Listener(9, "PROBE", HOST, 0, peer_dispatch(0), FRAME_BYTES_MAX).run)).port
                probe.cancel_scope.cancel()
            await trio.sleep(0.05)
            network = RaftNetwork(0, {0: (HOST, 1), 1: (HOST, port)}, RaftWire(0, CLUSTER_ID))
            driver = RecordingDriver(0)
            network.attach(driver)
            await nursery.start(network.run)
            network.send(m.Message(0, 1, 1, m.VoteRequest(1, 0, 0, 0, pre_vote=False)))
            await wait_for(lambda: network.dropped_requests == 1, 1, "the request to a closed port dropped")
            await nursery.start(Listener(1, "CONTROLLER", HOST, port, peer_dispatch(0), FRAME_BYTES_MAX).run)
            up_s = trio.current_time()
            correlation_id = 2
            while not driver.delivered:  # the core would resend like this, on its own timers
                network.send(m.Message(0, 1, correlation_id, m.VoteRequest(1, 0, 0, 0, pre_vote=False)))
                correlation_id += 1
                await trio.sleep(0.05)
                assert trio.current_time() - up_s < 2 * RECONNECT_BACKOFF_MAX_MS / 1000 + 0.5, \
                    "expected a reconnect within the backoff limit"
            assert driver.delivered[0][1].source == 1, driver.delivered
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_send_queues_by_lane_and_drops_the_oldest():
    async def main() -> None:
        network = RaftNetwork(0, {0: (HOST, 1), 1: (HOST, 2)}, RaftWire(0, CLUSTER_ID), queue_max=2)
        votes = [m.Message(0, 1, i, m.VoteRequest(1, 0, 0, 0, pre_vote=False)) for i in range(1, 4)]
        fetch = m.Message(0, 1, 4, m.FetchRequest(0, 1, 0, 0))
        for message in [*votes, fetch]:
            network.send(message)
        network.send(m.Message(0, 2, 5, m.VoteRequest(1, 0, 0, 0, pre_vote=False)))  # no endpoint
        network.send(m.Message(0, 1, 9, m.VoteResponse(m.Error.NONE, None, 1, True, False)))  # nobody waits
        assert (network.dropped_requests, network.dropped_responses) == (2, 1)

        def queued(kind):
            channel = network._lanes[(1, kind)].receive_channel
            items = []
            while True:
                try:
                    items.append(channel.receive_nowait()[1])
                except trio.WouldBlock:
                    return items
        assert queued(QUORUM_LANE) == votes[1:], "expected the oldest vote dropped"
        assert queued(FETCH_LANE) == [fetch]

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_an_unanswered_request_times_out_and_an_answer_is_routed_by_source_and_correlation_id():
    async def main() -> None:
        network = RaftNetwork(1, {0: (HOST, 1), 1: (HOST, 2)}, RaftWire(1, CLUSTER_ID), request_timeout_ms=300)
        driver = RecordingDriver(1)
        network.attach(driver)
        peer = RaftWire(0, CLUSTER_ID)
        vote = m.Message(0, 1, 7, m.VoteRequest(1, 0, 0, 0, pre_vote=False))

        start = trio.current_time()
        correlation_id, body = apis.decode_response(52, 2, (await network.handle_frame(peer.encode_request(vote)[4:]))[4:])
        assert (correlation_id, body.error_code) == (7, ErrorCode.request_timed_out), body
        assert abs(trio.current_time() - start - 0.3) < 1e-9, "expected to wait exactly the request timeout"
        assert [message for _, message in driver.delivered] == [vote]

        answer = m.Message(1, 0, 7, m.VoteResponse(m.Error.NONE, None, 1, True, False))
        async with trio.open_nursery() as nursery:
            responses = []

            async def ask() -> None:
                responses.append(await network.handle_frame(peer.encode_request(vote)[4:]))
            nursery.start_soon(ask)
            await trio.sleep(0.1)
            duplicate = await network.handle_frame(peer.encode_request(vote)[4:])  # same (source, id)
            assert apis.decode_response(52, 2, duplicate[4:])[1].error_code == ErrorCode.request_timed_out
            network.send(answer)
        assert peer.decode_response(responses[0][4:], vote) == answer, responses
        assert abs(trio.current_time() - start - 0.4) < 1e-9, trio.current_time() - start

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


def test_a_request_the_driver_drops_is_answered_at_once():
    async def main() -> None:
        network = RaftNetwork(1, {0: (HOST, 1), 1: (HOST, 2)}, RaftWire(1, CLUSTER_ID))
        network.attach(RecordingDriver(1, inbox_max=0))
        vote = m.Message(0, 1, 7, m.VoteRequest(1, 0, 0, 0, pre_vote=False))
        start = trio.current_time()
        frame = await network.handle_frame(RaftWire(0, CLUSTER_ID).encode_request(vote)[4:])
        assert apis.decode_response(52, 2, frame[4:])[1].error_code == ErrorCode.request_timed_out
        assert trio.current_time() == start, "expected no wait for a request the inbox dropped"

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
