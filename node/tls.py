"""TLS for Shoal: ``ssl.SSLContext`` objects built from the ``tls-*`` directives.

Redis keeps one OpenSSL context for everything; Python's ``ssl`` module splits
server and client sides and fixes the peer-verification mode per context, so
Shoal builds three from the same directives:

* ``server``  -- accepts clients on ``tls-port``; asks for a client
  certificate as ``tls-auth-clients`` says (``yes``: required, ``optional``:
  verified if sent, ``no``: not asked);
* ``peer``    -- accepts cluster bus links (``tls-cluster yes``); always
  requires a certificate signed by the configured CA, as Redis does for the bus;
* ``client``  -- outgoing links (cluster bus, replication with
  ``tls-replication yes``); presents ``tls-client-cert-file``/``-key-file``
  when both are set, else ``tls-cert-file``/``-key-file``, and verifies the
  other side's chain against the CA without checking its host name (Redis
  does not check names either).

Directives handled as Redis's ``tlsConfigure`` does: ``tls-protocols`` (any of
``TLSv1 TLSv1.1 TLSv1.2 TLSv1.3``, default ``TLSv1.2 TLSv1.3``),
``tls-ciphers`` (TLS <= 1.2 cipher list), ``tls-ciphersuites`` (TLS 1.3),
``tls-prefer-server-ciphers``, ``tls-session-caching`` with
``tls-session-cache-size``/``-timeout``, ``tls-dh-params-file``,
``tls-key-file-pass``. Python's ``ssl`` has no call for the TLS 1.3
ciphersuites or for the session-cache size/timeout/mode, so those few settings
go straight to the ``SSL_CTX`` of the context through libssl (the same
library the ``_ssl`` module is linked with); when that is not possible they are
logged as not applied instead of failing.

CONFIG SET of any context directive rebuilds all three contexts at once; if
the new settings do not load, nothing changes and CONFIG SET fails with
Redis's "Unable to update TLS configuration. Check server logs." (the reason is
logged). Connections already open keep the context they were made with.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import ssl
import sys

__all__ = [
    "TLSClosed",
    "TLSConnection",
    "TLSError",
    "TLSState",
    "CONTEXT_DIRECTIVES",
    "client_context",
    "parse_protocols",
    "peer_context",
    "server_context",
    "tls_needed",
]

#: Directives whose change rebuilds the contexts (Redis's applyTlsCfg ones).
CONTEXT_DIRECTIVES = (
    "tls-cert-file", "tls-key-file", "tls-key-file-pass", "tls-client-cert-file", "tls-client-key-file",
    "tls-client-key-file-pass", "tls-dh-params-file", "tls-ca-cert-file", "tls-ca-cert-dir", "tls-protocols",
    "tls-ciphers", "tls-ciphersuites", "tls-prefer-server-ciphers", "tls-session-caching",
    "tls-session-cache-size", "tls-session-cache-timeout",
)

_PROTOCOLS = {
    "tlsv1": ssl.TLSVersion.TLSv1,
    "tlsv1.1": ssl.TLSVersion.TLSv1_1,
    "tlsv1.2": ssl.TLSVersion.TLSv1_2,
    "tlsv1.3": ssl.TLSVersion.TLSv1_3,
}
_ORDER = [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3]
_NO_FLAGS = {
    ssl.TLSVersion.TLSv1: ssl.OP_NO_TLSv1,
    ssl.TLSVersion.TLSv1_1: ssl.OP_NO_TLSv1_1,
    ssl.TLSVersion.TLSv1_2: ssl.OP_NO_TLSv1_2,
    ssl.TLSVersion.TLSv1_3: ssl.OP_NO_TLSv1_3,
}


class TLSError(Exception):
    """The tls-* settings cannot be turned into a context; the message says why (for the log)."""


def tls_needed(config) -> bool:
    """Whether this node needs TLS contexts at all (Redis: tls-port, tls-replication or tls-cluster)."""
    return bool(config["tls-port"] or config["tls-replication"] or config["tls-cluster"])


def parse_protocols(text: str) -> set:
    """``tls-protocols`` as a set of ``ssl.TLSVersion``; empty text means TLSv1.2 + TLSv1.3."""
    words = text.split()
    if not words:
        return {ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3}
    out = set()
    for word in words:
        version = _PROTOCOLS.get(word.lower())
        if version is None:
            raise TLSError(
                "Invalid tls-protocols specified. Use a combination of 'TLSv1', 'TLSv1.1', 'TLSv1.2' and 'TLSv1.3'."
            )
        out.add(version)
    return out


# ------------------------------------------------------------ libssl access for what ssl lacks

_libssl = None
_libssl_tried = False
_HEAD = ctypes.sizeof(ctypes.c_ssize_t) + ctypes.sizeof(ctypes.c_void_p)  # PyObject_HEAD (release build)
_SSL_CTRL_SET_SESS_CACHE_SIZE = 42
_SSL_CTRL_SET_SESS_CACHE_MODE = 44
_SSL_SESS_CACHE_OFF = 0
_SSL_SESS_CACHE_SERVER = 2


def _lib():
    """libssl as the _ssl module uses it, or None (then the few extra settings are skipped)."""
    global _libssl, _libssl_tried
    if _libssl_tried:
        return _libssl
    _libssl_tried = True
    if hasattr(sys, "gettotalrefcount"):  # debug build: another object layout
        return None
    version = ssl.OPENSSL_VERSION_INFO[0]
    names = [f"libssl.so.{version}", ctypes.util.find_library("ssl")]
    for name in names:
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            lib.SSL_CTX_set_ciphersuites.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
            lib.SSL_CTX_set_ciphersuites.restype = ctypes.c_int
            lib.SSL_CTX_ctrl.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
            lib.SSL_CTX_ctrl.restype = ctypes.c_long
            lib.SSL_CTX_set_timeout.argtypes = [ctypes.c_void_p, ctypes.c_long]
            lib.SSL_CTX_set_timeout.restype = ctypes.c_long
            lib.SSL_CTX_get_timeout.argtypes = [ctypes.c_void_p]
            lib.SSL_CTX_get_timeout.restype = ctypes.c_long
            lib.OpenSSL_version_num.restype = ctypes.c_ulong
        except (OSError, AttributeError):
            continue
        if lib.OpenSSL_version_num() != ssl.OPENSSL_VERSION_NUMBER:
            continue  # another libssl than the one _ssl uses: its SSL_CTX is not ours to touch
        _libssl = lib
        break
    return _libssl


def _ctx_pointer(ctx: ssl.SSLContext, lib) -> int | None:
    """The ``SSL_CTX *`` of ``ctx`` (first field after PyObject_HEAD), checked before use."""
    pointer = ctypes.c_void_p.from_address(id(ctx) + _HEAD).value
    if not pointer:
        return None
    # Check: the session timeout read through the pointer equals what a fresh context has (300 s)
    # only if the pointer really is an SSL_CTX; reading a timeout is harmless either way.
    try:
        timeout = lib.SSL_CTX_get_timeout(pointer)
    except Exception:  # pragma: no cover - defensive
        return None
    return pointer if 0 < timeout < 10**7 else None


def _set_ciphersuites(ctx: ssl.SSLContext, suites: str) -> None:
    lib = _lib()
    pointer = _ctx_pointer(ctx, lib) if lib is not None else None
    if pointer is None:
        raise TLSError(f"Failed to configure ciphersuites: {suites} (not supported by this Python build)")
    if not lib.SSL_CTX_set_ciphersuites(pointer, suites.encode()):
        raise TLSError(f"Failed to configure ciphersuites: {suites}")


def _session_cache(ctx: ssl.SSLContext, on: bool, size: int, timeout: int, logger) -> None:
    if not on:
        ctx.options |= ssl.OP_NO_TICKET
    lib = _lib()
    pointer = _ctx_pointer(ctx, lib) if lib is not None else None
    if pointer is None:
        if logger is not None:
            logger.verbose("tls-session-cache settings not applied (no access to the SSL_CTX)")
        return
    if on:
        lib.SSL_CTX_ctrl(pointer, _SSL_CTRL_SET_SESS_CACHE_MODE, _SSL_SESS_CACHE_SERVER, None)
        lib.SSL_CTX_ctrl(pointer, _SSL_CTRL_SET_SESS_CACHE_SIZE, size, None)
        lib.SSL_CTX_set_timeout(pointer, timeout)
    else:
        lib.SSL_CTX_ctrl(pointer, _SSL_CTRL_SET_SESS_CACHE_MODE, _SSL_SESS_CACHE_OFF, None)


# ------------------------------------------------------------ context construction


def _base(config, protocol, *, client: bool) -> ssl.SSLContext:
    ctx = ssl.SSLContext(protocol)
    versions = parse_protocols(config["tls-protocols"])
    present = [v for v in _ORDER if v in versions]
    # min/max first (OpenSSL 3 refuses TLSv1/1.1 at security level >= 1 unless the floor allows it),
    # then OP_NO_* for holes such as "TLSv1 TLSv1.3".
    try:
        ctx.minimum_version = present[0]
        ctx.maximum_version = present[-1]
    except ValueError as exc:
        raise TLSError(f"Invalid tls-protocols: {exc}") from None
    lo, hi = _ORDER.index(present[0]), _ORDER.index(present[-1])
    for version in _ORDER[lo:hi]:
        if version not in versions:  # a hole such as "TLSv1.1 TLSv1.3" (deprecated flags, only then)
            ctx.options |= _NO_FLAGS[version]
    ctx.options |= ssl.OP_NO_COMPRESSION
    cert_file, key_file, password = config["tls-cert-file"], config["tls-key-file"], config["tls-key-file-pass"]
    if client and config["tls-client-cert-file"] and config["tls-client-key-file"]:
        cert_file = config["tls-client-cert-file"]
        key_file = config["tls-client-key-file"]
        password = config["tls-client-key-file-pass"]
    try:
        ctx.load_cert_chain(cert_file, key_file, password or None)
    except (OSError, ssl.SSLError) as exc:
        raise TLSError(f"Failed to load certificate: {cert_file} / private key: {key_file}: {exc}") from None
    ca_file, ca_dir = config["tls-ca-cert-file"], config["tls-ca-cert-dir"]
    if ca_file or ca_dir:
        try:
            ctx.load_verify_locations(cafile=ca_file or None, capath=ca_dir or None)
        except (OSError, ssl.SSLError) as exc:
            raise TLSError(f"Failed to configure CA certificate(s) file/directory: {exc}") from None
    if config["tls-ciphers"]:
        try:
            ctx.set_ciphers(config["tls-ciphers"])
        except ssl.SSLError:
            raise TLSError(f"Failed to configure ciphers: {config['tls-ciphers']}") from None
    if config["tls-ciphersuites"]:
        _set_ciphersuites(ctx, config["tls-ciphersuites"])
    return ctx


def _check_required(config) -> None:
    if not config["tls-cert-file"]:
        raise TLSError("No tls-cert-file configured!")
    if not config["tls-key-file"]:
        raise TLSError("No tls-key-file configured!")
    if (config["tls-auth-clients"] != "no" or config["tls-cluster"] or config["tls-replication"]) and not (
        config["tls-ca-cert-file"] or config["tls-ca-cert-dir"]
    ):
        raise TLSError(
            "Either tls-ca-cert-file or tls-ca-cert-dir must be specified when tls-cluster, "
            "tls-replication or tls-auth-clients are enabled!"
        )


def _server(config, verify: ssl.VerifyMode, logger=None) -> ssl.SSLContext:
    ctx = _base(config, ssl.PROTOCOL_TLS_SERVER, client=False)
    ctx.verify_mode = verify
    if config["tls-prefer-server-ciphers"]:
        ctx.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx.options |= ssl.OP_SINGLE_DH_USE
    if hasattr(ssl, "OP_NO_RENEGOTIATION"):
        ctx.options |= ssl.OP_NO_RENEGOTIATION
    if config["tls-dh-params-file"]:
        try:
            ctx.load_dh_params(config["tls-dh-params-file"])
        except (OSError, ssl.SSLError) as exc:
            raise TLSError(f"Failed to load DH params file: {config['tls-dh-params-file']}: {exc}") from None
    _session_cache(
        ctx, config["tls-session-caching"], config["tls-session-cache-size"], config["tls-session-cache-timeout"],
        logger,
    )
    return ctx


_AUTH = {"yes": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL, "no": ssl.CERT_NONE}


def server_context(config, logger=None) -> ssl.SSLContext:
    """Context for accepting clients on ``tls-port`` (client certificates per ``tls-auth-clients``)."""
    _check_required(config)
    return _server(config, _AUTH[config["tls-auth-clients"]], logger)


def peer_context(config, logger=None) -> ssl.SSLContext:
    """Context for accepting cluster bus links: a CA-signed peer certificate is always required."""
    _check_required(config)
    return _server(config, ssl.CERT_REQUIRED, logger)


def client_context(config) -> ssl.SSLContext:
    """Context for this node's outgoing TLS links (cluster bus; replication when ``tls-replication yes``).

    For the replication helper: wrap the socket connected to the primary with
    ``client_context(node.config).wrap_socket(sock, server_hostname=None)`` (or
    ``trio.SSLStream(stream, ctx, server_hostname=None)``, or a
    ``wrap_bio`` pair) and speak the replication protocol over it. The context
    presents ``tls-client-cert-file``/``tls-client-key-file`` when both are
    set, else ``tls-cert-file``/``tls-key-file``, verifies the primary's chain
    against ``tls-ca-cert-file``/``tls-ca-cert-dir`` and does not check host
    names (as Redis). Raises ``TLSError`` (message for the log) if the
    settings do not load. ``TLSState.client`` holds the one built at start-up
    and rebuilt on CONFIG SET, which is cheaper than calling this per link.
    """
    _check_required(config)
    ctx = _base(config, ssl.PROTOCOL_TLS_CLIENT, client=True)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


class TLSState:
    """The node's live contexts; ``node.tls`` when TLS is configured (else None).

    ``server`` / ``peer`` / ``client`` are rebuilt together by CONFIG SET of
    any ``CONTEXT_DIRECTIVES`` entry and, for ``server``, of ``tls-auth-clients``
    (Redis reads that one per accepted connection: same effect).
    """

    def __init__(self, config, logger=None) -> None:
        self.config = config
        self.logger = logger
        self.server: ssl.SSLContext | None = None
        self.peer: ssl.SSLContext | None = None
        self.client: ssl.SSLContext | None = None
        self.build()

    def build(self) -> None:
        """(Re)build all contexts; raises TLSError and keeps the old ones if anything fails."""
        config = self.config
        server = server_context(config, self.logger)
        peer = peer_context(config, self.logger)
        client = client_context(config)
        self.server, self.peer, self.client = server, peer, client

    def watch(self, config_error) -> None:
        """Rebuild on CONFIG SET; ``config_error(message)`` makes the exception CONFIG SET reports."""

        def changed() -> None:
            try:
                self.build()
            except TLSError as exc:
                if self.logger is not None:
                    self.logger.warning(str(exc))
                raise config_error("Unable to update TLS configuration. Check server logs.") from None

        self.config.on_change_group(CONTEXT_DIRECTIVES + ("tls-auth-clients",), changed)


# ------------------------------------------------------------ one accepted TLS client (server loop)


class TLSClosed(Exception):
    """The peer ended the TLS session (close_notify)."""


_ENCRYPT_CHUNK = 256 * 1024  # plaintext encrypted per step: bounds the ciphertext held in memory


class TLSConnection:
    """TLS state of one client of the epoll loop: an ``SSLObject`` over a ``MemoryBIO`` pair.

    The loop reads raw bytes from the socket and passes them to ``receive``,
    which advances the handshake and returns the plaintext (possibly empty);
    whatever TLS itself has to send (handshake records, session tickets,
    alerts) collects in ``raw_out``, which the loop writes to the socket. For
    replies, ``encrypt`` moves plaintext from the client's output buffer into
    ``raw_out`` in bounded steps, so a big reply is never held twice over.
    ``receive`` drains the SSL object completely (every record already
    decrypted is returned), so no application data stays hidden inside it
    while epoll reports the socket idle.
    """

    __slots__ = ("obj", "incoming", "outgoing", "raw_out", "ready")

    def __init__(self, ctx: ssl.SSLContext) -> None:
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.incoming, self.outgoing, server_side=True)
        self.raw_out = bytearray()
        self.ready = False  # handshake finished

    def receive(self, raw: bytes) -> bytes:
        """Feed socket bytes; return decrypted application data. Raises ssl.SSLError / TLSClosed."""
        self.incoming.write(raw)
        obj = self.obj
        try:
            if not self.ready:
                try:
                    obj.do_handshake()
                except ssl.SSLWantReadError:
                    return b""
                self.ready = True
            chunks = []
            while True:
                try:
                    chunk = obj.read(65536)
                except ssl.SSLWantReadError:
                    break
                except ssl.SSLZeroReturnError:
                    raise TLSClosed() from None
                if not chunk:
                    raise TLSClosed()
                chunks.append(chunk)
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        finally:
            if self.outgoing.pending:
                self.raw_out += self.outgoing.read()

    def encrypt(self, out: bytearray) -> int:
        """Move up to one chunk of plaintext from ``out`` into ``raw_out``; returns the plaintext count."""
        n = len(out)
        if n <= _ENCRYPT_CHUNK:
            self.obj.write(out)
            out.clear()
        else:
            n = _ENCRYPT_CHUNK
            self.obj.write(bytes(out[:n]))
            del out[:n]
        self.raw_out += self.outgoing.read()
        return n

    def close_notify(self) -> bytes:
        """The close_notify alert to send before closing (empty if none can be made)."""
        if not self.ready:
            return b""
        try:
            self.obj.unwrap()
        except (ssl.SSLError, ValueError):
            pass
        return bytes(self.raw_out) + self.outgoing.read()
