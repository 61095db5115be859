"""kafka-console-producer: read lines from stdin and produce them to a topic.

Flags and defaults follow Apache Kafka 4.x's ConsoleProducer: acks=-1, linger.ms=1000,
batch.size=16384, retries=3, request.timeout.ms=1500 unless set by ``--producer-property`` or
``--producer.config`` (the explicit flags win over both, as Kafka's maybeMergeOptions).
``--compression-codec`` without a value means gzip. One deliberate difference: Kafka forces
compression.type from ``--compression-codec`` (``none`` when absent); we keep a
``compression.type`` given as a producer property when the flag is absent.
Lines are parsed by Kafka's LineMessageReader rules (``tools.messages``).

At a terminal (stdin and stdout both ttys, Java's ``System.console() != null``) it prompts with
``>`` before each line, as Kafka's does. Ctrl-C stops reading and flushes what was typed, as
Kafka's shutdown hook closes its producer: every line entered before Ctrl-C is acknowledged by
the time the tool exits with 130. End of input (Ctrl-D, or the end of a pipe) exits with 0.
"""

from __future__ import annotations

import os
import signal
import sys
from argparse import Namespace
from typing import Any, BinaryIO

from tools.common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    KafkaArgumentParser,
    PlainError,
    integer,
    load_properties,
    parse_key_values,
    run_command,
    run_trio,
)

READ_CHUNK_BYTES = 64 * 1024
LINE_QUEUE_SIZE = 1024
DEFAULT_READER = "org.apache.kafka.tools.LineMessageReader"

# (flag attribute, producer property, Kafka's default for the flag)
MERGED_OPTIONS = (
    ("timeout", "linger.ms", "1000"),
    ("request_required_acks", "acks", "-1"),
    ("request_timeout_ms", "request.timeout.ms", "1500"),
    ("message_send_max_retries", "retries", "3"),
    ("retry_backoff_ms", "retry.backoff.ms", "100"),
    ("batch_size", "batch.size", "16384"),
    ("max_partition_memory_bytes", "batch.size", "16384"),
)


def build_parser() -> KafkaArgumentParser:
    parser = KafkaArgumentParser("kafka-console-producer",
                                 "This tool helps to read data from standard input and publish it to Kafka.")
    parser.add_argument("--bootstrap-server", help="REQUIRED: The server(s) to connect to.")
    parser.add_argument("--broker-list", help="DEPRECATED, use --bootstrap-server instead.")
    parser.add_argument("--topic", help="REQUIRED: The topic id to produce messages to.")
    parser.add_argument("--sync", action="store_true", help="Send each message synchronously, one at a time.")
    parser.add_argument("--compression-codec", nargs="?", const="gzip",
                        help="The compression codec: none, gzip, snappy, lz4 or zstd (gzip without a value).")
    parser.add_argument("--batch-size", type=integer)
    parser.add_argument("--max-partition-memory-bytes", type=integer)
    parser.add_argument("--message-send-max-retries", type=integer)
    parser.add_argument("--retry-backoff-ms", type=integer)
    parser.add_argument("--timeout", type=integer, help="linger.ms: how long a batch waits to fill.")
    parser.add_argument("--request-required-acks", help="The required acks of the producer requests.")
    parser.add_argument("--request-timeout-ms", type=integer)
    parser.add_argument("--line-reader", default=DEFAULT_READER, help="Only Kafka's LineMessageReader.")
    parser.add_argument("--property", action="append", default=[], metavar="prop",
                        help="Message reader properties: parse.key, key.separator, parse.headers, ...")
    parser.add_argument("--reader-config", help="Config properties file for the message reader.")
    parser.add_argument("--producer-property", action="append", default=[], metavar="producer_prop")
    parser.add_argument("--producer.config", dest="producer_config", help="Producer config properties file.")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser(), execute, argv)


def execute(args: Namespace) -> int:
    bootstrap = args.bootstrap_server or args.broker_list
    if not bootstrap:
        raise PlainError('Missing required argument "[bootstrap-server]"')
    if not args.topic:
        raise PlainError('Missing required argument "[topic]"')
    if args.line_reader != DEFAULT_READER:
        raise PlainError(f"kraft's console producer has only {DEFAULT_READER}, not {args.line_reader}")
    from tools.messages import LineMessageReader
    from tools.producer import settings_from_properties

    reader = LineMessageReader(reader_properties(args))
    settings = settings_from_properties(producer_properties(args))
    prompt = sys.stdout.buffer if _at_terminal() else None
    interrupted = run_trio(produce_stdin, bootstrap, args.topic, settings, reader, args.sync, sys.stdin.buffer,
                           prompt)
    return EXIT_INTERRUPTED if interrupted else EXIT_OK


def _at_terminal() -> bool:
    try:
        return os.isatty(sys.stdin.fileno()) and os.isatty(sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):
        return False


def reader_properties(args: Namespace) -> dict[str, str]:
    properties = load_properties(args.reader_config) if args.reader_config else {}
    properties["topic"] = args.topic
    properties.update(parse_key_values(args.property))
    return properties


def producer_properties(args: Namespace) -> dict[str, str]:
    properties = load_properties(args.producer_config) if args.producer_config else {}
    properties.update(parse_key_values(args.producer_property))
    for attribute, name, default in MERGED_OPTIONS:
        value = getattr(args, attribute)
        if value is not None:
            properties[name] = str(value)
        elif name not in properties:
            properties[name] = default
    if args.compression_codec is not None:
        properties["compression.type"] = args.compression_codec or "gzip"
    properties.setdefault("client.id", "console-producer")
    return properties


async def produce_stdin(bootstrap: str, topic: str, settings: Any, reader: Any, sync: bool, stdin: BinaryIO,
                        prompt: BinaryIO | None) -> bool:
    """Produce every line of stdin; True when Ctrl-C ended the input (everything read before
    it is still sent and acknowledged)."""
    import trio

    from protocol.client import Client
    from tools.producer import Producer

    async with Client(bootstrap, client_id=settings.client_id) as client:
        producer = Producer(client, topic, settings)
        await producer.start()
        send_lines, receive_lines = trio.open_memory_channel[str](LINE_QUEUE_SIZE)
        reading = trio.CancelScope()
        interrupted = trio.Event()
        with trio.open_signal_receiver(signal.SIGINT) as signals:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(read_lines, stdin, send_lines, reading, prompt)
                nursery.start_soon(_stop_reading_on_signal, signals, reading, interrupted)
                try:
                    await feed(producer, reader, receive_lines, sync)
                finally:
                    nursery.cancel_scope.cancel()
        return interrupted.is_set()


async def _stop_reading_on_signal(signals: Any, reading: Any, interrupted: Any) -> None:
    async for _ in signals:
        interrupted.set()
        reading.cancel()
        return


async def feed(producer: Any, reader: Any, lines: Any, sync: bool) -> None:
    """Parse lines into the producer's batches; send full batches at once and lingering ones
    when their time is up; flush everything at the end of input, and before reporting a line
    that does not parse (Kafka's producer flushes on close as well)."""
    import trio

    from tools.messages import MessageFormatError

    while True:
        line = None
        with trio.move_on_at(producer.next_deadline()):
            try:
                line = await lines.receive()
            except trio.EndOfChannel:
                break
        if line is None:
            producer.close_lingering()
        else:
            try:
                record = reader.read(line)
            except MessageFormatError:
                producer.close_all()
                await producer.send_ready()
                raise
            producer.add(record)
            if sync:
                producer.close_all()
        if producer.has_ready:
            await producer.send_ready()
    producer.close_all()
    await producer.send_ready()


async def read_lines(stdin: BinaryIO, lines: Any, reading: Any, prompt: BinaryIO | None) -> None:
    """Read stdin in chunks on a worker thread and hand over whole lines (UTF-8, ``\\n`` or
    ``\\r\\n`` terminated; a last line without terminator counts, as Java's readLine) until the
    end of input or until ``reading`` is cancelled; then close the channel."""
    import trio

    async with lines:
        pending = b""
        with reading:
            while True:
                if prompt is not None and not pending:
                    _show_prompt(prompt)
                chunk = await trio.to_thread.run_sync(_read_chunk, stdin, abandon_on_cancel=True)
                if not chunk:
                    break
                pending += chunk
                *complete, pending = pending.split(b"\n")
                # A line read is a line typed: it reaches the producer even when Ctrl-C came.
                with trio.CancelScope(shield=True):
                    for raw in complete:
                        await lines.send(_decode_line(raw))
        if pending and not reading.cancelled_caught:
            await lines.send(_decode_line(pending))


def _show_prompt(output: BinaryIO) -> None:
    try:
        output.write(b">")
        output.flush()
    except OSError:
        pass


def _read_chunk(stdin: BinaryIO) -> bytes:
    """Read straight from the file descriptor where there is one: a thread that Ctrl-C leaves
    blocked in a read must not hold the lock of Python's stdin buffer, or the interpreter
    cannot shut down."""
    try:
        fd = stdin.fileno()
    except (AttributeError, OSError, ValueError):
        read1 = getattr(stdin, "read1", None)
        return read1(READ_CHUNK_BYTES) if read1 is not None else stdin.read(READ_CHUNK_BYTES)
    return os.read(fd, READ_CHUNK_BYTES)


def _decode_line(raw: bytes) -> str:
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    return raw.decode("utf-8", errors="replace")


if __name__ == "__main__":
    sys.exit(main())
