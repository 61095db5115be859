"""A TCP proxy in front of every node's ports, so the nemesis can cut, slow and heal any link.

Rules:
- Every node port the cluster advertises (client and inter-broker traffic, controller traffic)
  is a proxy port here that forwards to the node's real port. Brokers and controllers find each
  other only through these addresses (advertised.listeners, controller.quorum.voters).
- A link is (source, destination): the destination is the node behind the proxy port; the
  source is found when a connection is accepted, by asking the kernel which process owns the
  connecting socket (/proc/net/tcp, then /proc/PID/fd). A node's process is its node id; any
  other process (the harness's clients, a tool) is ``client``. So one proxy port per node port
  tells every link apart, without root and without per-peer ports.
- Bytes flow in two directions on a connection: from the side that connected to the side that
  accepted, and back. A rule names a direction, ``(from, to)``: a *cut* stops forwarding bytes
  from ``from`` to ``to`` on every connection between them (the bytes wait in the kernel, as
  with a dropped packet that TCP retransmits once the link heals; the peer only sees silence
  and times out); a *slow* rule delays every chunk by a latency and caps the bandwidth. A
  connection to a node itself is never cut.
- The proxy runs as its own process (``python -m kraft_jepsen.proxy``), so forwarding does not
  share an interpreter with the clients. It reads commands, one JSON object per line, on stdin
  and answers each with one JSON line on stdout:
  ``{"listen": [[name, destination_node, target_port], ...]}`` -> ``{"ports": {name: port}}``;
  ``{"pids": {"1": pid, ...}}`` (whenever a node restarts); ``{"cut": [[from, to], ...],
  "slow": [[from, to, latency_ms, bytes_per_s or null], ...]}`` replaces every rule (empty lists
  heal); ``{"stats": true}`` -> counters. EOF on stdin stops the proxy.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field

import trio

CHUNK_BYTES = 65536
# Chunks waiting in a slow direction before the reader stops reading (and the sender's kernel
# buffer fills, as on a congested link).
SLOW_QUEUE_CHUNKS = 64
CLIENT = "client"


@dataclass(frozen=True, slots=True)
class Slow:
    latency_ms: float
    bytes_per_s: float | None


@dataclass
class Rules:
    """What the nemesis wants now; every forwarder rereads it when `changed` fires."""

    cut: frozenset[tuple[str, str]] = frozenset()
    slow: dict[tuple[str, str], Slow] = field(default_factory=dict)
    changed: trio.Event = field(default_factory=trio.Event)

    def replace(self, cut: frozenset[tuple[str, str]], slow: dict[tuple[str, str], Slow]) -> None:
        self.cut, self.slow = cut, slow
        changed, self.changed = self.changed, trio.Event()
        changed.set()

    def is_cut(self, source: str, destination: str) -> bool:
        return source != destination and (source, destination) in self.cut

    async def wait_open(self, source: str, destination: str) -> None:
        """Returns once bytes may flow from source to destination."""
        while self.is_cut(source, destination):
            await self.changed.wait()


def _socket_inode(local_port: int, remote_port: int) -> int | None:
    """The inode of the loopback socket local_port -> remote_port, from the kernel's table."""
    want_local, want_remote = f":{local_port:04X}", f":{remote_port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as handle:
                next(handle)
                for line in handle:
                    fields = line.split()
                    if fields[1].endswith(want_local) and fields[2].endswith(want_remote):
                        return int(fields[9])
        except OSError:
            continue
    return None


def _owner(inode: int, pids: dict[int, str]) -> str:
    """Which node's process holds socket `inode`; anything else is a client."""
    target = f"socket:[{inode}]"
    for pid, node in pids.items():
        directory = f"/proc/{pid}/fd"
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            try:
                if os.readlink(f"{directory}/{name}") == target:
                    return node
            except OSError:
                continue
    return CLIENT


def identify_source(peer_port: int, proxy_port: int, pids: dict[int, str]) -> str:
    inode = _socket_inode(peer_port, proxy_port)
    return CLIENT if inode is None else _owner(inode, pids)


class Proxy:
    def __init__(self) -> None:
        self.rules = Rules()
        self.pids: dict[int, str] = {}
        self.counters = {"connections": 0, "bytes": 0}

    async def serve_port(self, name: str, destination: str, target_port: int, *,
                         task_status=trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        task_status.started(port)
        await trio.serve_listeners(lambda stream: self.handle(stream, destination, target_port, port), listeners)

    async def handle(self, inbound: trio.SocketStream, destination: str, target_port: int, proxy_port: int) -> None:
        self.counters["connections"] += 1
        try:
            peer_port = inbound.socket.getpeername()[1]
        except OSError:  # gone before we looked
            await inbound.aclose()
            return
        source = await trio.to_thread.run_sync(identify_source, peer_port, proxy_port, dict(self.pids))
        try:
            outbound = await trio.open_tcp_stream("127.0.0.1", target_port)
        except OSError:  # the node is down: the client sees the connection close at once
            await inbound.aclose()
            return
        async with inbound, outbound, trio.open_nursery() as nursery:
            nursery.start_soon(self.forward, inbound, outbound, source, destination, nursery.cancel_scope)
            nursery.start_soon(self.forward, outbound, inbound, destination, source, nursery.cancel_scope)

    async def forward(self, reader: trio.SocketStream, writer: trio.SocketStream, source: str, destination: str,
                      connection: trio.CancelScope) -> None:
        """Copies bytes source -> destination under the rules; when either side closes or
        breaks, the whole connection closes (Kafka never half-closes)."""
        sender, receiver = trio.open_memory_channel[tuple[float, bytes]](SLOW_QUEUE_CHUNKS)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._send_chunks, receiver, writer, source, destination, connection)
            async with sender:
                try:
                    while True:
                        await self.rules.wait_open(source, destination)
                        data = await reader.receive_some(CHUNK_BYTES)
                        if not data:
                            break
                        await sender.send((trio.current_time(), data))
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    connection.cancel()

    async def _send_chunks(self, receiver, writer: trio.SocketStream, source: str, destination: str,
                           connection: trio.CancelScope) -> None:
        try:
            async with receiver:
                async for received_at, data in receiver:
                    await self.rules.wait_open(source, destination)
                    slow = self.rules.slow.get((source, destination))
                    if slow is not None:
                        await trio.sleep_until(received_at + slow.latency_ms / 1000)
                    await writer.send_all(data)
                    self.counters["bytes"] += len(data)
                    if slow is not None and slow.bytes_per_s:
                        await trio.sleep(len(data) / slow.bytes_per_s)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        connection.cancel()


def _parse_rules(command: dict) -> tuple[frozenset[tuple[str, str]], dict[tuple[str, str], Slow]]:
    cut = frozenset((str(a), str(b)) for a, b in command.get("cut", ()))
    slow = {}
    for a, b, latency_ms, bytes_per_s in command.get("slow", ()):
        assert latency_ms >= 0 and (bytes_per_s is None or bytes_per_s > 0), command
        slow[(str(a), str(b))] = Slow(float(latency_ms), None if bytes_per_s is None else float(bytes_per_s))
    return cut, slow


async def control(proxy: Proxy) -> None:
    """Serves commands from stdin until EOF, then cancels everything."""
    stdin, stdout = trio.lowlevel.FdStream(os.dup(0)), trio.lowlevel.FdStream(os.dup(1))
    buffer = b""
    async with trio.open_nursery() as nursery:
        while True:
            data = await stdin.receive_some(CHUNK_BYTES)
            if not data:
                nursery.cancel_scope.cancel()
                return
            buffer += data
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                answer = await _execute(proxy, nursery, json.loads(line))
                await stdout.send_all(json.dumps(answer).encode() + b"\n")


async def _execute(proxy: Proxy, nursery: trio.Nursery, command: dict) -> dict:
    if "listen" in command:
        ports = {}
        for name, destination, target_port in command["listen"]:
            ports[name] = await nursery.start(proxy.serve_port, name, str(destination), int(target_port))
        return {"ports": ports}
    if "pids" in command:
        proxy.pids = {int(pid): str(node) for node, pid in command["pids"].items() if pid is not None}
        return {"ok": True}
    if "cut" in command or "slow" in command:
        proxy.rules.replace(*_parse_rules(command))
        return {"ok": True}
    if "stats" in command:
        return dict(proxy.counters)
    return {"error": f"unknown command {sorted(command)}"}


def main() -> int:
    try:
        trio.run(control, Proxy())
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
