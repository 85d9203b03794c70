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
    TransportConfig,
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
        f"{size:>6} B frames: {frames / elapsed:>10,.0f} frames/s  "
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


def _run(coro_factory: Callable[[], object], loop_name: str) -> list[str]:
    if loop_name == "uvloop":
        import uvloop

        return uvloop.run(coro_factory())  # type: ignore[no-any-return, arg-type]
    return asyncio.run(coro_factory())  # type: ignore[arg-type]


def main() -> None:
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
    for line in _run(lambda: bench_transport(args.seconds), loop_name):
        print(f"TLS 1.3, one link: {line}")


if __name__ == "__main__":
    main()
