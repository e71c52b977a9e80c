"""The cluster bus shared secret (``cluster-bus-secret``, Shoal-specific): a per-link HMAC handshake.

Redis's bus trusts whoever can reach the bus port. With ``cluster-bus-secret``
set, every bus link (after the TLS handshake when ``tls-cluster yes``) starts
with a mutual challenge/response before any bus frame is read or sent:

    connector -> acceptor   "SHBA" 0x01 Nc                  (Nc: 32 random bytes)
    acceptor  -> connector  "SHBA" 0x02 Na HMAC(s, "shoal-bus-accept"  | Nc | Na)
    connector -> acceptor   "SHBA" 0x03    HMAC(s, "shoal-bus-connect" | Na | Nc)

HMAC is HMAC-SHA256 keyed with the secret. Each side checks the other's MAC
over its own fresh nonce, so a recorded handshake cannot be replayed, and the
two labels keep one direction's answer from being reflected as the other's.
A link that fails (wrong secret, no handshake at all, e.g. a node without the
secret or a plain Redis node, or too slow) is closed and logged; nothing
reaches the cluster state machine, so a peer without the secret can neither
MEET nor gossip. The secret authenticates links; it does not encrypt them --
use ``tls-cluster yes`` for that. Use a long random secret: an acceptor
answers any challenge, so a short one could be guessed offline from one answer.
"""

from __future__ import annotations

import hashlib
import hmac
import os

__all__ = ["BusAuthError", "accept_handshake", "connect_handshake"]

MAGIC = b"SHBA"
_NONCE = 32
_MAC = 32
_HELLO = 1
_CHALLENGE = 2
_PROOF = 3
_HELLO_LEN = len(MAGIC) + 1 + _NONCE
_CHALLENGE_LEN = len(MAGIC) + 1 + _NONCE + _MAC
_PROOF_LEN = len(MAGIC) + 1 + _MAC


class BusAuthError(Exception):
    """The peer did not prove knowledge of the bus secret (message: why, for the log)."""


def _mac(secret: bytes, label: bytes, a: bytes, b: bytes) -> bytes:
    return hmac.new(secret, label + a + b, hashlib.sha256).digest()


async def _read_exact(stream, n: int, buf: bytearray) -> bytes:
    while len(buf) < n:
        data = await stream.receive_some(65536)
        if not data:
            raise BusAuthError("connection closed during the cluster bus secret handshake")
        buf += data
    out = bytes(buf[:n])
    del buf[:n]
    return out


def _check(msg: bytes, kind: int) -> None:
    if msg[:4] != MAGIC or msg[4] != kind:
        raise BusAuthError("the peer did not start the cluster bus secret handshake (no cluster-bus-secret?)")


async def connect_handshake(stream, secret: bytes) -> bytes:
    """Run the connector's side; returns bytes already read past the handshake (bus frames)."""
    buf = bytearray()
    nc = os.urandom(_NONCE)
    await stream.send_all(MAGIC + bytes([_HELLO]) + nc)
    msg = await _read_exact(stream, _CHALLENGE_LEN, buf)
    _check(msg, _CHALLENGE)
    na, mac = msg[5:5 + _NONCE], msg[5 + _NONCE:]
    if not hmac.compare_digest(mac, _mac(secret, b"shoal-bus-accept", nc, na)):
        raise BusAuthError("the peer does not know our cluster-bus-secret")
    await stream.send_all(MAGIC + bytes([_PROOF]) + _mac(secret, b"shoal-bus-connect", na, nc))
    return bytes(buf)


async def accept_handshake(stream, secret: bytes) -> bytes:
    """Run the acceptor's side; returns bytes already read past the handshake (bus frames)."""
    buf = bytearray()
    msg = await _read_exact(stream, _HELLO_LEN, buf)
    _check(msg, _HELLO)
    nc = msg[5:]
    na = os.urandom(_NONCE)
    await stream.send_all(MAGIC + bytes([_CHALLENGE]) + na + _mac(secret, b"shoal-bus-accept", nc, na))
    try:
        msg = await _read_exact(stream, _PROOF_LEN, buf)
    except BusAuthError:
        raise BusAuthError(
            "the peer closed the link after our challenge (it does not know our cluster-bus-secret)") from None
    _check(msg, _PROOF)
    if not hmac.compare_digest(msg[5:], _mac(secret, b"shoal-bus-connect", na, nc)):
        raise BusAuthError("wrong cluster-bus-secret")
    return bytes(buf)


class PrefixedStream:
    """A stream that first returns ``prefix`` (bytes read past the handshake), then reads ``stream``."""

    def __init__(self, stream, prefix: bytes) -> None:
        self.stream = stream
        self.prefix = prefix

    async def receive_some(self, max_bytes=None) -> bytes:
        if self.prefix:
            data, self.prefix = self.prefix, b""
            return data
        return await self.stream.receive_some(max_bytes)

    async def send_all(self, data) -> None:
        await self.stream.send_all(data)

    async def aclose(self) -> None:
        await self.stream.aclose()
