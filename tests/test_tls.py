"""TLS for clients on ``tls-port`` (node.tls + the TLS path of node.server's epoll loop).

Certificates come from ``trustme`` (a throw-away CA). Clients: redis-py with
``ssl=True``, Debian's ``redis-cli --tls``, and raw ``ssl`` sockets where the
negotiated protocol must be seen. Where Redis defines the behaviour (replies
over TLS, tls-auth-clients, the error for a bad CONFIG SET) the same steps run
against a real redis-server started with the same TLS directives.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest
import redis
import trustme

from tests.servers import ServerProcess, free_port

REDIS_CLI = shutil.which("redis-cli")


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1")
    client = ca.issue_cert("client@shoal")
    paths = {
        "dir": str(d),
        "ca": str(d / "ca.crt"),
        "cert": str(d / "server.crt"),
        "key": str(d / "server.key"),
        "client_cert": str(d / "client.crt"),
        "client_key": str(d / "client.key"),
        "other_cert": str(d / "other.crt"),
        "other_key": str(d / "other.key"),
    }
    ca.cert_pem.write_to_path(paths["ca"])
    server.private_key_pem.write_to_path(paths["key"])
    server.cert_chain_pems[0].write_to_path(paths["cert"])
    client.private_key_pem.write_to_path(paths["client_key"])
    client.cert_chain_pems[0].write_to_path(paths["client_cert"])
    # A certificate from another CA: must be refused where a client certificate is verified.
    other = trustme.CA().issue_cert("intruder")
    other.private_key_pem.write_to_path(paths["other_key"])
    other.cert_chain_pems[0].write_to_path(paths["other_cert"])
    return paths


def tls_args(certs, auth="optional", *extra):
    return (
        "--tls-cert-file", certs["cert"], "--tls-key-file", certs["key"],
        "--tls-ca-cert-file", certs["ca"], "--tls-auth-clients", auth, *extra,
    )


@pytest.fixture(scope="module")
def servers(certs):
    """A shoal-server and a redis-server, each with a plain port and a tls-port (auth optional)."""
    started = []
    try:
        for kind in ("shoal", "redis"):
            tls_port = free_port()
            proc = ServerProcess(kind, "--tls-port", str(tls_port), *tls_args(certs))
            proc.tls_port = tls_port
            started.append(proc.start())
        yield {p.kind: p for p in started}
    finally:
        for proc in started:
            proc.stop()


@pytest.fixture
def shoal_tls(servers):
    proc = servers["shoal"]
    with redis.Redis(port=proc.port) as r:
        r.flushall()
        r.config_set("tls-auth-clients", "optional")
    yield proc
    assert proc.alive(), "shoal-server died:\n" + proc.log()


def tls_client(port, certs, *, cert=True, protocol=2, **kw) -> redis.Redis:
    extra = {"ssl_certfile": certs["client_cert"], "ssl_keyfile": certs["client_key"]} if cert else {}
    return redis.Redis(
        port=port, ssl=True, ssl_ca_certs=certs["ca"], protocol=protocol, socket_timeout=10, **extra, **kw
    )


def raw_tls(port, certs, *, cert=False, min_version=None, max_version=None) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=certs["ca"])
    ctx.check_hostname = False
    if cert:
        ctx.load_cert_chain(certs["client_cert"], certs["client_key"])
    if min_version:
        ctx.minimum_version = min_version
    if max_version:
        ctx.maximum_version = max_version
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return ctx.wrap_socket(sock)


def cli(port, certs, *args, cert=False, tls=True):
    argv = [REDIS_CLI, "-p", str(port)]
    if tls:
        argv += ["--tls", "--cacert", certs["ca"]]
    if cert:
        argv += ["--cert", certs["client_cert"], "--key", certs["client_key"]]
    done = subprocess.run(argv + list(args), capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    return done.returncode, done.stdout.strip(), done.stderr.strip()


# ------------------------------------------------------------------ redis-py and redis-cli


def test_redis_py_basic_commands_over_tls(shoal_tls, certs):
    with tls_client(shoal_tls.tls_port, certs, cert=False) as r:
        assert r.ping() is True
        assert r.set("k", "v") is True
        assert r.get("k") == b"v"
        assert r.incr("n", 5) == 5
        assert r.rpush("l", *range(10)) == 10
        assert r.lrange("l", 0, -1) == [str(i).encode() for i in range(10)]
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            r.incr("l")
    # The plain port sees the same keyspace.
    with redis.Redis(port=shoal_tls.port) as plain:
        assert plain.get("k") == b"v"


def test_resp3_over_tls(shoal_tls, certs):
    with tls_client(shoal_tls.tls_port, certs, protocol=3) as r:
        r.hset("h", mapping={"a": "1", "b": "2"})
        assert r.hgetall("h") == {b"a": b"1", b"b": b"2"}
        info = r.execute_command("HELLO", "3")
        assert info[b"proto"] == 3
        r.zadd("z", {"m": 1.5})
        assert r.zscore("z", "m") == 1.5


def test_pipelining_over_tls(shoal_tls, certs):
    with tls_client(shoal_tls.tls_port, certs) as r:
        pipe = r.pipeline(transaction=False)
        for i in range(3000):
            pipe.set(f"key:{i}", f"value:{i}" * 10)
        for i in range(3000):
            pipe.get(f"key:{i}")
        out = pipe.execute()
    assert out[:3000] == [True] * 3000
    assert out[3000:] == [f"value:{i}".encode() * 10 for i in range(3000)]


def test_big_values_over_tls(shoal_tls, certs):
    one_mb = os.urandom(1 << 20)
    eight_mb = os.urandom(8 << 20)
    with tls_client(shoal_tls.tls_port, certs) as r:
        r.set("big", one_mb)
        assert r.get("big") == one_mb
        assert r.strlen("big") == 1 << 20
        r.set("bigger", eight_mb)  # larger than the socket buffers: the EPOLLOUT path carries it
        pipe = r.pipeline(transaction=False)
        pipe.get("bigger").get("big").get("bigger")
        assert pipe.execute() == [eight_mb, one_mb, eight_mb]


def test_many_tls_clients_interleaved(shoal_tls, certs):
    clients = [tls_client(shoal_tls.tls_port, certs, cert=(i % 2 == 0)) for i in range(20)]
    try:
        for round_ in range(5):
            for i, c in enumerate(clients):
                c.rpush(f"q{i}", round_)
        for i, c in enumerate(clients):
            assert c.lrange(f"q{i}", 0, -1) == [b"0", b"1", b"2", b"3", b"4"]
        assert int(clients[0].info("clients")["connected_clients"]) >= 20
    finally:
        for c in clients:
            c.close()


def test_pubsub_delivery_to_tls_subscriber(shoal_tls, certs):
    """Messages written to a TLS client by another client's command go through the TLS flush."""
    with tls_client(shoal_tls.tls_port, certs) as sub_conn, redis.Redis(port=shoal_tls.port) as pub:
        p = sub_conn.pubsub()
        p.subscribe("news")
        assert p.get_message(timeout=5)["type"] == "subscribe"
        payloads = [os.urandom(n) for n in (1, 100, 70000)]
        for data in payloads:
            assert pub.publish("news", data) == 1
        got = []
        deadline = time.monotonic() + 10
        while len(got) < 3 and time.monotonic() < deadline:
            m = p.get_message(timeout=1)
            if m and m["type"] == "message":
                got.append(m["data"])
        assert got == payloads
        p.close()


def test_blocked_tls_client_is_woken(shoal_tls, certs):
    result = {}

    def blocker():
        with tls_client(shoal_tls.tls_port, certs) as r:
            result["v"] = r.blpop("bq", timeout=10)

    t = threading.Thread(target=blocker)
    t.start()
    with redis.Redis(port=shoal_tls.port) as plain:
        deadline = time.monotonic() + 5
        while plain.info("clients")["blocked_clients"] < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        plain.rpush("bq", "hello")
    t.join(15)
    assert result["v"] == (b"bq", b"hello")


@pytest.mark.skipif(REDIS_CLI is None, reason="redis-cli not installed")
def test_redis_cli_tls(shoal_tls, certs):
    port = shoal_tls.tls_port
    assert cli(port, certs, "PING")[:2] == (0, "PONG")
    assert cli(port, certs, "SET", "clikey", "x" * 1000, cert=True)[:2] == (0, "OK")
    assert cli(port, certs, "STRLEN", "clikey")[1] == "1000"
    # A plain-text redis-cli on the TLS port gets the connection closed, and the server logs it.
    rc, out, err = cli(port, certs, "PING", tls=False)
    assert out != "PONG"
    assert "closed" in (out + err).lower() or rc != 0
    deadline = time.monotonic() + 5
    while "Error accepting a client connection" not in shoal_tls.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "Error accepting a client connection" in shoal_tls.log()


def test_plaintext_on_tls_port_is_closed(shoal_tls, certs):
    with socket.create_connection(("127.0.0.1", shoal_tls.tls_port), timeout=5) as s:
        s.sendall(b"*1\r\n$4\r\nPING\r\n")
        data = s.recv(100)
        # No RESP reply: an alert at most, then EOF.
        assert not data.startswith(b"+PONG")
        s.settimeout(5)
        while data:
            data = s.recv(100)
    with redis.Redis(port=shoal_tls.port) as plain:
        assert plain.ping()


# ------------------------------------------------------------------ tls-auth-clients


def _ping_over_tls(port, certs, cert_key=None) -> bool:
    """One TLS connection (no retries), PING; True if PONG came back."""
    ctx = ssl.create_default_context(cafile=certs["ca"])
    ctx.check_hostname = False
    if cert_key:
        ctx.load_cert_chain(*cert_key)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with ctx.wrap_socket(raw) as s:
                s.sendall(b"*1\r\n$4\r\nPING\r\n")
                return s.recv(16) == b"+PONG\r\n"
    except (ssl.SSLError, OSError):
        return False


def _connects(port, certs, *, cert=True) -> bool:
    return _ping_over_tls(port, certs, (certs["client_cert"], certs["client_key"]) if cert else None)


def _client_with(port, certs, cert_key) -> bool:
    return _ping_over_tls(port, certs, cert_key)


@pytest.mark.parametrize("mode", ["yes", "optional", "no"])
def test_tls_auth_clients_modes_as_redis(servers, certs, mode):
    outcome = {}
    for kind, proc in servers.items():
        with redis.Redis(port=proc.port) as r:
            r.config_set("tls-auth-clients", mode)
        try:
            outcome[kind] = (
                _connects(proc.tls_port, certs, cert=False),
                _connects(proc.tls_port, certs, cert=True),
                _client_with(proc.tls_port, certs, (certs["other_cert"], certs["other_key"])),
            )
        finally:
            with redis.Redis(port=proc.port) as r:
                r.config_set("tls-auth-clients", "optional")
    expected = {"yes": (False, True, False), "optional": (True, True, False), "no": (True, True, True)}[mode]
    assert outcome["shoal"] == expected
    assert outcome["redis"] == expected


def test_refused_client_is_logged(shoal_tls, certs):
    with redis.Redis(port=shoal_tls.port) as r:
        r.config_set("tls-auth-clients", "yes")
    assert not _connects(shoal_tls.tls_port, certs, cert=False)
    deadline = time.monotonic() + 5
    while "CERTIFICATE" not in shoal_tls.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "PEER_DID_NOT_RETURN_A_CERTIFICATE" in shoal_tls.log()


# ------------------------------------------------------------------ CONFIG SET reloads


def test_config_set_tls_protocols_reloads(shoal_tls, certs):
    with redis.Redis(port=shoal_tls.port) as r:
        try:
            r.config_set("tls-protocols", "TLSv1.2")
            with raw_tls(shoal_tls.tls_port, certs) as s:
                assert s.version() == "TLSv1.2"
                s.sendall(b"PING\r\n")
                assert s.recv(10) == b"+PONG\r\n"
            with pytest.raises((ssl.SSLError, OSError)):
                raw_tls(shoal_tls.tls_port, certs, min_version=ssl.TLSVersion.TLSv1_3).close()
            assert r.config_get("tls-protocols") == {"tls-protocols": "TLSv1.2"}
        finally:
            r.config_set("tls-protocols", "")
        with raw_tls(shoal_tls.tls_port, certs) as s:
            assert s.version() == "TLSv1.3"


def test_config_set_tls_ciphers_and_ciphersuites(shoal_tls, certs):
    with redis.Redis(port=shoal_tls.port) as r:
        try:
            r.config_set("tls-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256")
            with raw_tls(shoal_tls.tls_port, certs) as s:
                assert s.cipher()[0] == "TLS_CHACHA20_POLY1305_SHA256"
            r.config_set("tls-protocols", "TLSv1.2")
            r.config_set("tls-ciphers", "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256")
            with raw_tls(shoal_tls.tls_port, certs) as s:
                assert s.cipher()[0] in ("ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256")
        finally:
            r.config_set("tls-protocols", "")
            r.config_set("tls-ciphers", "")
            r.config_set("tls-ciphersuites", "")


def test_config_set_bad_tls_values_fail_as_redis(servers, certs):
    for name, value in (
        ("tls-cert-file", os.path.join(certs["dir"], "missing.crt")),
        ("tls-protocols", "TLSv9"),
        ("tls-ciphers", "NO-SUCH-CIPHER"),
        ("tls-ciphersuites", "NO_SUCH_SUITE"),
    ):
        replies = {}
        for kind, proc in servers.items():
            with redis.Redis(port=proc.port) as r:
                old = r.config_get(name)[name]
                with pytest.raises(redis.ResponseError) as err:
                    r.config_set(name, value)
                replies[kind] = str(err.value)
                assert r.config_get(name)[name] == old  # rolled back
        assert replies["shoal"] == replies["redis"], name
        assert "Unable to update TLS configuration" in replies["shoal"]
    # Still serving TLS with the old settings.
    assert _connects(servers["shoal"].tls_port, certs)


def test_config_set_new_certificate_is_used(shoal_tls, certs, tmp_path):
    """Rotating tls-cert-file/tls-key-file: new connections present the new certificate."""
    ca2 = trustme.CA()
    cert2 = ca2.issue_cert("localhost", "127.0.0.1")
    cert2.private_key_pem.write_to_path(str(tmp_path / "k2.key"))
    cert2.cert_chain_pems[0].write_to_path(str(tmp_path / "c2.crt"))
    ca2.cert_pem.write_to_path(str(tmp_path / "ca2.crt"))
    with redis.Redis(port=shoal_tls.port) as r:
        try:
            r.execute_command("CONFIG", "SET", "tls-cert-file", str(tmp_path / "c2.crt"),
                              "tls-key-file", str(tmp_path / "k2.key"))
            assert not _connects(shoal_tls.tls_port, certs)  # old CA no longer trusts the server
            with redis.Redis(port=shoal_tls.tls_port, ssl=True, ssl_ca_certs=str(tmp_path / "ca2.crt"),
                             socket_timeout=10) as r2:
                assert r2.ping()
        finally:
            r.execute_command("CONFIG", "SET", "tls-cert-file", certs["cert"], "tls-key-file", certs["key"])
    assert _connects(shoal_tls.tls_port, certs)


# ------------------------------------------------------------------ start-up


class _TLSOnly(ServerProcess):
    """A shoal-server with ``port 0``: readiness is checked with a TLS PING."""

    def __init__(self, certs, *args):
        self.certs = certs
        self.tls_port = free_port()
        super().__init__("shoal", "--port", "0", "--tls-port", str(self.tls_port), *args)

    def start(self, timeout: float = 15.0):
        env = dict(os.environ)
        from tests.servers import REPO

        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        self.proc = subprocess.Popen(self.argv, cwd=self.dir, env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return self
            try:
                with raw_tls(self.tls_port, self.certs, cert=True) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("TLS-only shoal did not answer\n" + self.log())


def test_tls_only_server(certs):
    with _TLSOnly(certs, *tls_args(certs, "yes")) as proc:
        assert proc.alive(), proc.log()
        with socket.socket() as s:  # nothing listens on a plain port
            assert s.connect_ex(("127.0.0.1", proc.port)) != 0 or proc.port == 0
        with tls_client(proc.tls_port, certs) as r:
            assert r.set("a", "b") and r.get("a") == b"b"
            assert r.config_get("port") == {"port": "0"}
            assert r.config_get("tls-port") == {"tls-port": str(proc.tls_port)}
        assert "Ready to accept connections tls" in proc.log()


def test_startup_without_certificate_fails(certs):
    proc = _TLSOnly(certs, "--tls-ca-cert-file", certs["ca"])
    proc.start()
    try:
        assert proc.proc.wait(10) == 1
        log = proc.log()
        assert "No tls-cert-file configured!" in log
        assert "Failed to configure TLS. Check logs for more info." in log
    finally:
        proc.stop()


def test_startup_auth_without_ca_fails(certs):
    proc = _TLSOnly(certs, "--tls-cert-file", certs["cert"], "--tls-key-file", certs["key"])
    proc.start()
    try:
        assert proc.proc.wait(10) == 1
        assert "Either tls-ca-cert-file or tls-ca-cert-dir must be specified" in proc.log()
    finally:
        proc.stop()


def test_client_context_for_outgoing_links(certs):
    """node.tls.client_context: presents the client certificate, verifies the server against the CA."""
    from node.config import Config
    from node.tls import TLSError, client_context

    config = Config()
    config.load_text(
        f"tls-cert-file {certs['cert']}\ntls-key-file {certs['key']}\ntls-ca-cert-file {certs['ca']}\n"
        f"tls-client-cert-file {certs['client_cert']}\ntls-client-key-file {certs['client_key']}\n"
    )
    ctx = client_context(config)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname is False
    config.load_text("tls-ca-cert-file ''\ntls-replication yes")
    with pytest.raises(TLSError, match="tls-ca-cert-file or tls-ca-cert-dir"):
        client_context(config)


# ------------------------------------------------------------------ tls-cluster


def _cluster_nodes(port: int) -> list[list[str]]:
    with redis.Redis(port=port) as r:
        text = r.execute_command("CLUSTER", "NODES")
    text = text.decode() if isinstance(text, bytes) else text
    return [line.split() for line in text.splitlines() if line.strip()]


@pytest.mark.skipif(REDIS_CLI is None, reason="redis-cli not installed")
def test_tls_cluster_forms_over_tls(certs):
    """Three nodes with tls-cluster yes (and a bus secret, checked inside TLS) form a cluster."""
    from tests.servers import free_cluster_port

    nodes = []
    try:
        for _ in range(3):
            tls_port = free_cluster_port()  # the bus port is tls-port + 10000 in a TLS cluster
            proc = ServerProcess(
                "shoal", "--cluster-enabled", "yes", "--cluster-node-timeout", "2000", "--tls-cluster", "yes",
                "--tls-port", str(tls_port), *tls_args(certs, "yes"), "--cluster-bus-secret", "over-tls",
                port=free_port(),
            )
            proc.tls_port = tls_port
            nodes.append(proc.start(timeout=30))
        done = subprocess.run(
            [REDIS_CLI, "--cluster", "create", *[f"127.0.0.1:{n.tls_port}" for n in nodes], "--cluster-yes",
             "--tls", "--cacert", certs["ca"], "--cert", certs["client_cert"], "--key", certs["client_key"]],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            views = [_cluster_nodes(n.port) for n in nodes]
            if all(len(v) == 3 and all(row[7] == "connected" and "handshake" not in row[2] for row in v)
                   for v in views):
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"cluster did not converge: {views}")
        # Every node announces its TLS port, the bus is tls-port + 10000.
        addrs = sorted(row[1] for row in _cluster_nodes(nodes[0].port))
        assert addrs == sorted(f"127.0.0.1:{n.tls_port}@{n.tls_port + 10000}" for n in nodes)
        deadline = time.monotonic() + 20
        with redis.Redis(port=nodes[0].port, decode_responses=True) as r:
            while not r.execute_command("CLUSTER", "INFO").startswith("cluster_state:ok"):
                assert time.monotonic() < deadline, "cluster_state never became ok"
                time.sleep(0.1)
        # The bus port speaks TLS only: plain bytes are refused and logged.
        with socket.create_connection(("127.0.0.1", nodes[1].tls_port + 10000), timeout=5) as s:
            s.sendall(b"RCmb" + b"\0" * 200)
            s.settimeout(5)
            try:
                while s.recv(100):
                    pass
            except ConnectionResetError:
                pass
        deadline = time.monotonic() + 5
        while "TLS error accepting cluster node connection" not in nodes[1].log() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "TLS error accepting cluster node connection" in nodes[1].log()
        # A cluster client over TLS reaches keys in every node's slots.
        from redis.cluster import ClusterNode, RedisCluster

        rc = RedisCluster(startup_nodes=[ClusterNode("127.0.0.1", nodes[0].tls_port)], ssl=True,
                          ssl_ca_certs=certs["ca"], ssl_certfile=certs["client_cert"],
                          ssl_keyfile=certs["client_key"], ssl_check_hostname=False)
        try:
            for i in range(30):
                rc.set(f"k{i}", i)
            assert [rc.get(f"k{i}") for i in range(30)] == [str(i).encode() for i in range(30)]
        finally:
            rc.close()
    finally:
        for n in nodes:
            n.stop()


def test_config_set_tls_port_moves_the_listener(certs):
    """CONFIG SET tls-port opens the new port (setting TLS up if it was off) and closes the old one."""
    with ServerProcess("shoal", *tls_args(certs, "no")) as proc:  # certificates configured, no tls-port yet
        new_port = free_port()
        with redis.Redis(port=proc.port) as r:
            assert r.config_set("tls-port", new_port)
            assert _connects(new_port, certs, cert=False)
            other = free_port()
            assert r.config_set("tls-port", other)
            assert _connects(other, certs, cert=False)
            assert not _connects(new_port, certs, cert=False)
            with socket.socket() as blocker:  # a port already taken: Redis's error, value unchanged
                blocker.bind(("127.0.0.1", 0))
                blocker.listen(1)
                with pytest.raises(redis.ResponseError, match="Unable to listen on this port"):
                    r.config_set("tls-port", blocker.getsockname()[1])
            assert r.config_get("tls-port") == {"tls-port": str(other)}
            assert r.config_set("tls-port", 0)
            assert not _connects(other, certs, cert=False)
            assert r.ping()
    with ServerProcess("shoal") as proc:  # no certificates: TLS cannot be set up
        with redis.Redis(port=proc.port) as r:
            with pytest.raises(redis.ResponseError, match="Unable to update TLS configuration"):
                r.config_set("tls-port", free_port())
            assert r.config_get("tls-port") == {"tls-port": "0"}


def test_redis_replica_syncs_from_shoal_over_tls(certs):
    """A real redis-server with tls-replication yes replicates from Shoal's tls-port (full sync + stream)."""
    tls_port = free_port()
    with ServerProcess("shoal", "--tls-port", str(tls_port), *tls_args(certs, "yes")) as primary:
        big = os.urandom(1 << 20)
        with redis.Redis(port=primary.port) as r:
            pipe = r.pipeline(transaction=False)
            for i in range(2000):
                pipe.set(f"key:{i}", i)
            pipe.set("big", big).rpush("list", "a", "b", "c")
            pipe.execute()
            replica = ServerProcess(
                "redis", "--tls-replication", "yes", "--tls-cert-file", certs["client_cert"],
                "--tls-key-file", certs["client_key"], "--tls-ca-cert-file", certs["ca"],
                "--replicaof", "127.0.0.1", str(tls_port),
            )
            with replica, redis.Redis(port=replica.port) as rr:
                deadline = time.monotonic() + 60
                while rr.info("replication").get("master_link_status") != "up" or rr.dbsize() < 2002:
                    assert time.monotonic() < deadline, replica.log()[-2000:] + primary.log()[-2000:]
                    time.sleep(0.1)
                assert rr.get("big") == big
                assert rr.get("key:1999") == b"1999"
                r.set("after-sync", "streamed")
                r.lpush("list", "z")
                deadline = time.monotonic() + 30
                # The SET and the LPUSH may reach the replica in separate reads: wait for the later one.
                while rr.get("after-sync") is None or rr.llen("list") < 4:
                    assert time.monotonic() < deadline, replica.log()[-2000:] + primary.log()[-2000:]
                    time.sleep(0.05)
                assert rr.get("after-sync") == b"streamed"
                assert rr.lrange("list", 0, -1) == [b"z", b"a", b"b", b"c"]
                assert "MASTER <-> REPLICA sync: Finished with success" in replica.log()
