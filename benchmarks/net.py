"""Peer transport benchmark: frames/s and MB/s from one transport to another
over mutual TLS on 127.0.0.1, for small (200-byte) and large (64 KiB) frames,
plus the frame decoder alone.

    .venv/bin/python benchmarks/net.py [--seconds 2] [--loop auto|asyncio|uvloop]

Figures, not pass/fail. Each measurement is bounded in time; certificates are
made afresh in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import platform
import ssl
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from chaincity.net import (
    DEFAULT_KINDS,
    Envelope,
    FrameDecoder,
    Kind,
    Transport,
    decode_envelope,
    encode_frame,
)

CHAIN = "main"
SIZES = (200, 64 * 1024)
DRAIN_TIMEOUT_S = 10.0


def _machine(loop_name: str) -> str:
    return (
        f"{platform.platform()} | {platform.machine()} | {platform.processor() or '?'} | "
        f"python {platform.python_version()} | {ssl.OPENSSL_VERSION} | loop {loop_name}"
    )


class Counter:
    def __init__(self) -> None:
        self.frames = 0
        self.payload_bytes = 0

    def __call__(self, peer: str, envelope: Envelope) -> None:
        self.frames += 1
        self.payload_bytes += len(envelope.payload)


def _pair(directory: Path) -> tuple[Transport, Transport, Counter]:
    # The test helper makes the certificates; benchmarks run from the repository root.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.net.harness import make_network

    network = make_network(directory, {"a": "bank", "b": "tax"}, accept_only={"b"})
    counter = Counter()
    sender = network.transport("a", Counter())
    receiver = network.transport("b", counter)
    return sender, receiver, counter


async def _wait(predicate: Callable[[], bool], timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        while not predicate():
            await asyncio.sleep(0.001)


async def _stream(sender: Transport, counter: Counter, size: int, seconds: float) -> str:
    envelope = Envelope(CHAIN, Kind.CONSENSUS, bytes(size))
    sent = 0
    start_frames, start_bytes = counter.frames, counter.payload_bytes
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        for _ in range(256):
            if not sender.send("b", envelope):
                break
            sent += 1
        await asyncio.sleep(0)  # let the link write and the receiver read
    await _wait(lambda: counter.frames - start_frames >= sent, DRAIN_TIMEOUT_S)
    elapsed = time.perf_counter() - started
    frames = counter.frames - start_frames
    megabytes = (counter.payload_bytes - start_bytes) / 1e6
    return (
        f"TLS 1.3, one link, {size:>6} B frames: {frames / elapsed:>10,.0f} frames/s  "
        f"{megabytes / elapsed:>8.1f} MB/s  ({frames:,} frames in {elapsed:.2f} s)"
    )


async def bench_transport(seconds: float) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        sender, receiver, counter = _pair(Path(tmp))
        await receiver.start()
        await sender.start()
        try:
            async with asyncio.timeout(DRAIN_TIMEOUT_S):
                await sender.wait_connected(["b"])
            return [await _stream(sender, counter, size, seconds) for size in SIZES]
        finally:
            await sender.stop()
            await receiver.stop()


def bench_decoder(seconds: float) -> str:
    frame = encode_frame(Envelope(CHAIN, Kind.CONSENSUS, bytes(200)))
    chunk = frame * 1000
    decoder = FrameDecoder()
    frames = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        for body in decoder.feed(chunk):
            decode_envelope(body, DEFAULT_KINDS)
            frames += 1
    elapsed = time.perf_counter() - started
    return f"decoder alone, 200 B frames: {frames / elapsed:,.0f} frames/s (framing + envelope)"


class _BulkReceiver(asyncio.Protocol):
    def __init__(self, expected: int, done: asyncio.Future[None]) -> None:
        self.decoder = FrameDecoder()
        self.frames = 0
        self.expected = expected
        self.done = done

    def data_received(self, data: bytes) -> None:
        self.frames += len(self.decoder.feed(data))
        if self.frames >= self.expected and not self.done.done():
            self.done.set_result(None)


async def _framing_bulk(stream: bytes, count: int) -> float:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    server = await loop.create_server(lambda: _BulkReceiver(count, done), "127.0.0.1", 0)
    return await _time_stream(server, stream, done)


async def _time_stream(server: asyncio.Server, stream: bytes, done: asyncio.Future[None]) -> float:
    """Seconds from writing ``stream`` to ``server`` until it has read every frame."""
    port = server.sockets[0].getsockname()[1]
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.perf_counter()
    writer.write(stream)
    async with asyncio.timeout(DRAIN_TIMEOUT_S):
        await done
    elapsed = time.perf_counter() - started
    writer.close()
    server.close()
    return elapsed


async def _framing_readexactly(stream: bytes, count: int) -> float:
    done = asyncio.get_running_loop().create_future()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(count):
            length = int.from_bytes(await reader.readexactly(4), "big")
            await reader.readexactly(length)
        done.set_result(None)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return await _time_stream(server, stream, done)


async def bench_framing() -> str:
    """Why links parse in bulk: the same frames split by a Protocol feeding the
    decoder, and by one readexactly pair per frame (plain TCP, framing only)."""
    count = 100_000
    stream = encode_frame(Envelope(CHAIN, Kind.CONSENSUS, bytes(200))) * count
    bulk_s = await _framing_bulk(stream, count)
    exact_s = await _framing_readexactly(stream, count)
    return (
        f"framing 200 B frames over TCP: bulk {count / bulk_s:,.0f} frames/s, "
        f"readexactly {count / exact_s:,.0f} frames/s ({exact_s / bulk_s:.1f}x)"
    )


def _run(seconds: float, loop_name: str) -> list[str]:
    factory = None
    if loop_name == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return [runner.run(bench_framing()), *runner.run(bench_transport(seconds))]


def main() -> None:
    # The sender pushes until its queue refuses: expected here, not worth a warning.
    logging.getLogger("chaincity.net").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--loop", choices=["auto", "asyncio", "uvloop"], default="auto")
    args = parser.parse_args()
    loop_name = args.loop
    if loop_name == "auto":
        try:
            import uvloop  # noqa: F401

            loop_name = "uvloop"
        except ImportError:
            loop_name = "asyncio"
    print(_machine(loop_name))
    print(bench_decoder(args.seconds))
    for line in _run(args.seconds, loop_name):
        print(line)


if __name__ == "__main__":
    main()
