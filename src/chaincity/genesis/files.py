"""Small file helpers: atomic writes, bounded reads, and a directory swapped in whole."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from chaincity.crypto.keyfile import write_private_file
from chaincity.genesis.errors import ConfigError


def write_public_file(path: Path, data: bytes) -> None:
    """Write ``data`` atomically (temp file, fsync, rename)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_secret_file(path: Path, data: bytes) -> None:
    """Write ``data`` atomically into a file only its owner can read (0600)."""
    write_private_file(path, data)


def read_bounded(path: Path, size_max: int) -> bytes:
    """The file's bytes; ConfigError naming the file if unreadable or too large."""
    try:
        with open(path, "rb") as f:
            data = f.read(size_max + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    if len(data) > size_max:
        raise ConfigError(f"{path}: larger than {size_max} bytes")
    return data


def check_target_dir(target: Path, force: bool) -> None:
    """Refuse to replace anything but an empty directory unless ``force``."""
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise ConfigError(f"{target}: exists and is not a directory")
    if target.is_dir() and any(target.iterdir()) and not force:
        raise ConfigError(f"{target}: already exists (use --force to replace it)")


@contextmanager
def staged_dir(target: Path, force: bool) -> Iterator[Path]:
    """Yield a temporary directory beside ``target``; on success it replaces
    ``target`` in one rename, on failure it is removed and ``target`` is left
    as it was."""
    check_target_dir(target, force)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=target.parent))
    try:
        yield tmp
        _swap_in(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap_in(tmp: Path, target: Path) -> None:
    if not target.exists():
        os.rename(tmp, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.rename(target, old / "previous")
    try:
        os.rename(tmp, target)
    except OSError:
        os.rename(old / "previous", target)
        raise
    shutil.rmtree(old, ignore_errors=True)
