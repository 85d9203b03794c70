"""One TLS connection to a peer, as an asyncio Protocol.

Bytes are split into frames in bulk (every frame completed by one read is
handed over in one call), which is several times faster than awaiting each
frame with ``readexactly``. The link knows nothing of peers, queues or kinds;
it reports to its owner (the Transport).
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Protocol, cast

from chaincity.net.frames import FrameDecoder, FrameError


class LinkOwner(Protocol):
    def link_up(self, link: Link) -> None: ...

    def link_frames(self, link: Link, frames: list[bytes], size_bytes: int) -> None: ...

    def link_broken(self, link: Link, error: FrameError) -> None: ...

    def link_down(self, link: Link, exc: Exception | None) -> None: ...

    def link_writable(self, link: Link) -> None: ...


class Link(asyncio.Protocol):
    def __init__(
        self, owner: LinkOwner, *, outbound: bool, expected_peer: str | None, frame_size_max: int
    ) -> None:
        self._owner = owner
        self.outbound = outbound
        self.expected_peer = expected_peer
        self.peer: str | None = None  # set once the certificate maps to a peer
        self.remote = "?"
        self.paused = False
        self.closing = False
        self.made = False  # the TLS handshake completed and the owner was told
        self.bad_frames = 0
        self.last_rx_s = 0.0
        self.last_tx_s = 0.0
        self._decoder = FrameDecoder(frame_size_max)
        self._transport: asyncio.Transport | None = None

    # asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self._transport = cast(asyncio.Transport, transport)
        transport = self._transport
        peername = transport.get_extra_info("peername")
        if isinstance(peername, tuple) and len(peername) >= 2:
            self.remote = f"{peername[0]}:{peername[1]}"
        self.made = True
        self._owner.link_up(self)

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        frames = self._decoder.feed(data)
        self._owner.link_frames(self, frames, len(data))
        error = self._decoder.error
        if error is not None and not self.closing:
            self._owner.link_broken(self, error)

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self._transport = None
        self._owner.link_down(self, exc)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if not self.closing:
            self._owner.link_writable(self)

    # used by the owner

    @property
    def writable(self) -> bool:
        return self._transport is not None and not self.closing and not self.paused

    def peer_cert_der(self) -> bytes | None:
        if self._transport is None:
            return None
        ssl_object = self._transport.get_extra_info("ssl_object")
        if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
            return None
        return ssl_object.getpeercert(binary_form=True)

    def set_write_buffer_limits(self, high_bytes: int) -> None:
        if self._transport is not None:
            self._transport.set_write_buffer_limits(high=high_bytes)

    def write(self, frames: list[bytes]) -> None:
        assert self._transport is not None
        self._transport.write(b"".join(frames))

    def close(self) -> None:
        """Flush what was written, then close."""
        if self._transport is not None and not self.closing:
            self.closing = True
            self._transport.close()

    def abort(self) -> None:
        """Close at once, discarding buffered data (a hostile or dead peer)."""
        self.closing = True
        if self._transport is not None:
            self._transport.abort()
