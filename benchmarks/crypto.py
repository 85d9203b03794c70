"""Crypto suite throughput on one core: sign/s, verify/s and hash/s per suite.

    python benchmarks/crypto.py [--seconds 1.0] [--candidates] [--core N]

Prints figures, never pass/fail. ``--candidates`` also measures the other SM2
libraries that were weighed against tongsuopy (gmssl-pyx, gmssl-fast), if
they are installed; see docs/crypto.md for why tongsuopy was chosen.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import os
import platform
import ssl
import sys
import time
from collections.abc import Callable

from chaincity.bench.procfs import cpu_model
from chaincity.crypto import SUITE_NAMES, get_suite
from chaincity.crypto.sm4 import sm4_gcm_encrypt

BATCH = 32
ITERATIONS_MAX = 50_000_000
MESSAGE_32 = bytes(range(32))
MESSAGE_1K = bytes(i % 251 for i in range(1024))


def rate_per_s(operation: Callable[[], object], seconds: float) -> float:
    """Operations per second, running ``operation`` for about ``seconds``."""
    operation()  # warm caches and lazy imports outside the timed loop
    done = 0
    start = time.perf_counter()
    elapsed = 0.0
    while elapsed < seconds and done < ITERATIONS_MAX:
        for _ in range(BATCH):
            operation()
        done += BATCH
        elapsed = time.perf_counter() - start
    return done / elapsed


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _pin(core: int | None) -> str:
    if core is None:
        return "one thread, not pinned"
    if not hasattr(os, "sched_setaffinity"):
        return "one thread, cannot pin here"
    os.sched_setaffinity(0, {core})
    return f"one thread, pinned to core {core}"


def _tongsuo_version() -> str:
    try:
        from tongsuopy.backends.tongsuo.backend import backend

        return str(backend.openssl_version_text())
    except ImportError:
        return "not installed"


def print_machine(pinning: str) -> None:
    print("machine")
    print(f"  cpu          {cpu_model()}")
    print(f"  cores        {os.cpu_count()} ({pinning})")
    print(f"  python       {platform.python_implementation()} {platform.python_version()}")
    print(f"  platform     {platform.platform()}")
    print(f"  pynacl       {_version('pynacl')} (bundled libsodium)")
    print(f"  tongsuopy    {_version('tongsuopy')} ({_tongsuo_version()})")
    print(f"  cryptography {_version('cryptography')}")
    print(f"  hashlib      {ssl.OPENSSL_VERSION}, sm3 {'sm3' in hashlib.algorithms_available}")


def bench_suite(name: str, seconds: float) -> None:
    suite = get_suite(name)
    private_key = suite.generate_private_key()
    public_key = suite.public_key(private_key)
    signature = suite.sign(private_key, MESSAGE_32)
    figures = {
        "sign/s": rate_per_s(lambda: suite.sign(private_key, MESSAGE_32), seconds),
        "verify/s": rate_per_s(lambda: suite.verify(public_key, MESSAGE_32, signature), seconds),
        "hash 32 B/s": rate_per_s(lambda: suite.hash(MESSAGE_32), seconds),
        "hash 1 KiB/s": rate_per_s(lambda: suite.hash(MESSAGE_1K), seconds),
    }
    print(f"suite {name}")
    for label, value in figures.items():
        print(f"  {label:<14}{value:>14,.0f}")


def bench_sm4(seconds: float) -> None:
    key, nonce = bytes(16), bytes(12)
    per_s = rate_per_s(lambda: sm4_gcm_encrypt(key, nonce, MESSAGE_1K, b"aad"), seconds)
    print("sm4-gcm")
    print(f"  {'seal 1 KiB/s':<14}{per_s:>14,.0f}  ({per_s * 1024 / 2**20:,.1f} MiB/s)")


def _print_candidate(distribution: str, sign_per_s: float, verify_per_s: float) -> None:
    label = f"{distribution} {_version(distribution)}"
    print(f"  {label:<18} sign/s {sign_per_s:>8,.0f}  verify/s {verify_per_s:>8,.0f}")


def bench_candidates(seconds: float) -> None:
    """The SM2 libraries weighed against tongsuopy, each through its own API."""
    print("sm2 candidates (own APIs, 32-byte message)")
    try:
        import gmssl_pyx

        pub, priv = gmssl_pyx.sm2_key_generate()
        sig = gmssl_pyx.sm2_sign(priv, pub, MESSAGE_32)
        sign = rate_per_s(lambda: gmssl_pyx.sm2_sign(priv, pub, MESSAGE_32), seconds)
        verify = rate_per_s(lambda: gmssl_pyx.sm2_verify(pub, MESSAGE_32, sig), seconds)
        _print_candidate("gmssl-pyx", sign, verify)
    except ImportError:
        print("  gmssl-pyx not installed")
    try:
        import gmssl_fast

        signer = gmssl_fast.SM2.generate()
        sig = signer.sign(MESSAGE_32)
        verifier = gmssl_fast.SM2(public_key=signer.public_key_hex)
        sign = rate_per_s(lambda: signer.sign(MESSAGE_32), seconds)
        verify = rate_per_s(lambda: verifier.verify(MESSAGE_32, sig), seconds)
        _print_candidate("gmssl-fast", sign, verify)
    except ImportError:
        print("  gmssl-fast not installed")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=1.0, help="time per figure (default 1)")
    parser.add_argument("--candidates", action="store_true", help="also measure other SM2 libs")
    parser.add_argument("--core", type=int, default=None, help="pin to this core (Linux)")
    args = parser.parse_args(argv)
    seconds = max(0.01, min(args.seconds, 60.0))
    print_machine(_pin(args.core))
    for name in SUITE_NAMES:
        bench_suite(name, seconds)
    bench_sm4(seconds)
    if args.candidates:
        bench_candidates(seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
