"""Build and sign transactions with a member's key and certificate."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from chaincity.codec import encode, encode_value
from chaincity.crypto.keyfile import KeyPair, load_key_pair
from chaincity.types.identity import IdentityError, MemberCert, parse_cert
from chaincity.types.tx import TxBody, sign_tx


class Signer:
    """A member's key pair and certificate, bound to one chain."""

    def __init__(self, key: KeyPair, cert: MemberCert, chain_id: str = "main") -> None:
        if cert.body.public_key != key.public_key:
            raise ValueError("certificate does not belong to this key")
        self.key = key
        self.cert = cert
        self.chain_id = chain_id

    @classmethod
    def from_files(
        cls, key_path: str | Path, cert_path: str | Path, chain_id: str = "main"
    ) -> Signer:
        key = load_key_pair(Path(key_path))
        try:
            data = Path(cert_path).read_bytes()
        except OSError as exc:
            raise IdentityError("malformed", f"{cert_path}: cannot read ({exc.strerror})") from None
        cert, suite_name = parse_cert(data, str(cert_path))
        if suite_name != key.suite.name:
            raise IdentityError("malformed", f"{cert_path}: suite differs from the key's")
        return cls(key, cert, chain_id)

    def build(
        self,
        contract: str,
        method: str,
        args: Any,
        *,
        expiry_height: int,
        nonce: int | None = None,
    ) -> bytes:
        """Canonical bytes of a signed transaction."""
        body = TxBody(
            self.chain_id,
            self.cert,
            secrets.randbits(63) if nonce is None else nonce,
            contract,
            method,
            encode_value(args),
            expiry_height,
        )
        return encode(sign_tx(self.key.suite, self.key.private_key, body))
