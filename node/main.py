"""``shoal-server``: start one node, invoked the way ``redis-server`` is.

    shoal-server [/path/to/redis.conf] [--directive value ...]
    shoal-server -                        # config from stdin
    shoal-server --version | -v | --help | -h

The config file and the command-line directives are joined into one text, as
redis-server does, so an error points at one line number of that text and the
last occurrence of a directive wins.
"""

from __future__ import annotations

import os
import sys

import trio

from node.config import Config, ConfigError, parse_argv
from node.core import SHOAL_VERSION, VERSION, Node
from node.info import sampler_of
from node.log import Logger
from node.mutants import install as install_mutants
from node.server import ShoalServer, open_listeners
from node.tls import TLSError, TLSState, tls_needed

__all__ = ["main", "load_config"]


def _usage() -> str:
    return (
        "Usage: shoal-server [/path/to/redis.conf] [options] [-]\n"
        "       shoal-server - (read config from stdin)\n"
        "       shoal-server -v or --version\n"
        "       shoal-server -h or --help\n\n"
        "Examples:\n"
        "       shoal-server (run the server with default config)\n"
        "       shoal-server /etc/redis/6379.conf\n"
        "       shoal-server --port 7777\n"
        "       shoal-server --port 7777 --replicaof 127.0.0.1 8888\n"
        "       shoal-server /etc/myredis.conf --loglevel verbose -\n"
        "       shoal-server /etc/myredis.conf --loglevel verbose\n"
    )


def load_config(argv: list[str]) -> Config:
    """Build the config from redis-server style arguments; raises ConfigError."""
    from_stdin = False
    if argv and argv[-1] == "-":
        from_stdin = True
        argv = argv[:-1]
    path, options = parse_argv(argv)
    if path == "-":
        path, from_stdin = None, True
    text = ""
    if path is not None:
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as fh:
                text = fh.read()
        except OSError as exc:
            raise ConfigError(f"Fatal error, can't open config file '{path}': {exc.strerror}") from None
    if from_stdin:
        text += "\n" + sys.stdin.read()
    text += "\n" + options
    config = Config()
    config.config_file = os.path.abspath(path) if path else None
    config.load_text(text)
    return config


async def _sample_stats(node: Node) -> None:
    """Every 100 ms, sample the counters behind instantaneous_ops_per_sec (Redis's cron does it)."""
    sampler = sampler_of(node)
    while True:
        sampler.sample(node)
        await trio.sleep(0.1)


def _fatal_config(exc: ConfigError) -> None:
    """Redis's FATAL CONFIG FILE ERROR block (same words, same line numbering), on stderr."""
    if exc.line_no is None:
        Logger(level="warning", role="C").warning(exc.message)
        return
    sys.stderr.write(
        f"\n*** FATAL CONFIG FILE ERROR (Redis {VERSION}) ***\n"
        f"Reading the configuration file, at line {exc.line_no}\n"
        f">>> '{exc.line.strip()}'\n"
        f"{exc.message}\n"
    )


def _tls_port_hook(node, server, config, logger, current):
    """CONFIG SET tls-port, as Redis's applyTLSPort: set TLS up if needed, listen on the new port."""
    state = {"port": config["tls-port"] if current else 0}

    def changed(port: int) -> None:
        if port == state["port"]:
            return
        if node.tls is None:
            try:
                node.tls = TLSState(config, logger)
            except TLSError as exc:
                logger.warning(str(exc))
                raise ConfigError("Unable to update TLS configuration. Check server logs.") from None
            node.tls.watch(ConfigError)
        try:
            sockets = open_listeners(config["bind"], port, config["tcp-backlog"]) if port else []
        except OSError as exc:
            logger.warning(str(exc.strerror or exc))
            raise ConfigError("Unable to listen on this port. Check server logs.") from None
        server.replace_tls_listeners(sockets)
        state["port"] = port

    return changed


def _fit_maxclients(config, logger) -> None:
    """At start, as Redis: a maxclients the descriptor limit cannot serve is lowered, with Redis's warnings."""
    from node.config import open_files_for

    wanted = config["maxclients"]
    allowed, error = open_files_for(wanted)
    if allowed >= wanted:
        return
    config.values["maxclients"] = allowed
    logger.warning(f"You requested maxclients of {wanted} requiring at least {wanted + 32} max file descriptors.")
    logger.warning(f"Server can't set maximum open files to {wanted + 32} because of OS error: {error}.")
    logger.warning(f"Current maximum open files is {allowed + 32}. maxclients has been reduced to {allowed} to "
                   "compensate for low ulimit. If you need higher maxclients increase 'ulimit -n'.")


def _listen_hook(node, server, config, logger):
    """CONFIG SET port/bind, as Redis's changeListenPort/changeBindAddr.

    A new port is opened before the old one is closed; new bind addresses
    replace the old sockets (closed first: same port). If anything fails the
    old sockets are kept (or opened again) and CONFIG SET reports Redis's text.
    """
    state = {"port": config["port"], "bind": list(config["bind"])}

    def open_all(binds, port, tls_port):
        addresses = binds or ["*", "-::*"]  # bind "": every interface, as Redis's default
        plain = open_listeners(addresses, port, config["tcp-backlog"]) if port else []
        try:
            tls = open_listeners(addresses, tls_port, config["tcp-backlog"]) if tls_port else None
        except OSError:
            for sock in plain:
                sock.close()
            raise
        return plain, tls

    def changed() -> None:
        port, binds = config["port"], list(config["bind"])
        if port == state["port"] and binds == state["bind"]:
            return
        rebind = binds != state["bind"]
        tls_port = config["tls-port"] if rebind else 0
        if rebind:  # the same addresses may come back: free them first
            server.replace_listeners([])
            if tls_port:
                server.replace_tls_listeners([])
        try:
            plain, tls = open_all(binds, port, tls_port)
        except OSError as exc:
            logger.warning(str(exc.strerror or exc))
            if rebind:
                try:
                    plain, tls = open_all(state["bind"], state["port"], tls_port)
                    server.replace_listeners(plain)
                    if tls is not None:
                        server.replace_tls_listeners(tls)
                except OSError as again:
                    logger.warning(f"Failed to restore the old listening sockets: {again.strerror or again}")
            raise ConfigError("Failed to bind to specified addresses." if rebind
                              else "Unable to listen on this port. Check server logs.") from None
        server.replace_listeners(plain)
        if tls is not None:
            server.replace_tls_listeners(tls)
        node.tcp_port = port
        state.update(port=port, bind=binds)

    return changed


def _tls_use_hook(node, config, logger):
    """CONFIG SET tls-replication/tls-cluster yes, as Redis's applyTlsCfg: TLS must then be configurable."""

    def changed() -> None:
        if node.tls is None and (config["tls-replication"] or config["tls-cluster"]):
            try:
                node.tls = TLSState(config, logger)
            except TLSError as exc:
                logger.warning(str(exc))
                raise ConfigError("Unable to update TLS configuration. Check server logs.") from None
            node.tls.watch(ConfigError)

    return changed


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("-v", "--version"):
        print(f"Shoal server v={SHOAL_VERSION} (Redis {VERSION} compatible) bits=64 python={sys.version.split()[0]}")
        return 0
    if argv and argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    try:
        config = load_config(argv)
    except ConfigError as exc:
        _fatal_config(exc)
        return 1
    directory = config["dir"]
    try:
        os.chdir(directory)
    except OSError as exc:
        sys.stderr.write(f"Can't chdir to '{directory}': {exc.strerror}\n")
        return 1
    logger = Logger(config["logfile"], config["loglevel"], role="C")
    logger.warning("oO0OoO0OoO0Oo Shoal is starting oO0OoO0OoO0Oo")
    logger.warning(
        f"Shoal version={SHOAL_VERSION} (Redis {VERSION} compatible), bits=64, pid={os.getpid()}, just started"
    )
    logger.warning("Configuration loaded" if config.config_file else
                   "Warning: no config file specified, using the default config.")
    _fit_maxclients(config, logger)
    node = Node(config, logger=logger)
    node.config_file = config.config_file or ""
    node.executable = os.path.abspath(sys.argv[0])
    install_mutants(node)  # test-only seeded bugs: nothing unless SHOAL_MUTANT is set
    logger.role = "M"
    config.on_change("loglevel", logger.set_level)
    try:
        listeners = open_listeners(config["bind"], config["port"], config["tcp-backlog"]) if config["port"] else []
    except OSError as exc:
        logger.warning(str(exc.strerror or exc))
        return 1
    node.tls = None
    tls_listeners = []
    if tls_needed(config):
        try:
            node.tls = TLSState(config, logger)
        except TLSError as exc:
            logger.warning(str(exc))
            logger.warning("Failed to configure TLS. Check logs for more info.")
            for sock in listeners:
                sock.close()
            return 1
        node.tls.watch(ConfigError)
        try:
            if config["tls-port"]:
                tls_listeners = open_listeners(config["bind"], config["tls-port"], config["tcp-backlog"])
        except OSError as exc:
            logger.warning(str(exc.strerror or exc))
            return 1
    if config["pidfile"]:
        with open(config["pidfile"], "w") as fh:
            fh.write(f"{os.getpid()}\n")
    mode = "cluster" if node.cluster_enabled else "standalone"
    logger.notice(f"Running mode={mode}, port={config['port']}.")
    logger.notice("Server initialized")
    if not node.rdb.startup():  # load dbfilename before serving; a bad file stops here, untouched
        if config["pidfile"]:
            try:
                os.unlink(config["pidfile"])
            except OSError:
                pass
        logger.close()
        return 1
    server = ShoalServer(node, listeners, tls_listeners=tls_listeners)
    config.on_change("tls-port", _tls_port_hook(node, server, config, logger, tls_listeners))
    config.on_change_group(("tls-replication", "tls-cluster"), _tls_use_hook(node, config, logger))
    config.on_change_group(("port", "bind"), _listen_hook(node, server, config, logger))
    driver = None
    if node.cluster_enabled:
        from gossip.state import ConfigFileError
        from node.cluster.driver import ClusterDriver
        from node.cluster.routing import install

        binds = [b.lstrip("-") for b in config["bind"]]
        bind_ip = next((b for b in binds if b not in ("*", "::*")), "127.0.0.1")
        try:
            # As Redis's clusterInit: a TLS cluster announces (and bases its bus port on) the TLS port.
            bus_base = config["tls-port"] if config["tls-cluster"] and config["tls-port"] else config["port"]
            driver = ClusterDriver(node, bind_ip=bind_ip, port=bus_base)
        except ConfigFileError as exc:
            logger.warning(str(exc))
            return 1
        node.cluster = driver
        driver.flush_clients = server.flush_pending
        install(node, driver)

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_sample_stats, node)
            if config["metrics-port"]:
                from node.monitoring.metrics import metrics_hosts, serve_metrics

                try:
                    await nursery.start(serve_metrics, node, config["metrics-port"], metrics_hosts(config["bind"]))
                except OSError as exc:
                    logger.warning(f"Could not open the metrics port {config['metrics-port']}: {exc.strerror or exc}")
            if driver is not None:
                try:
                    await nursery.start(driver.run)
                except OSError as exc:
                    logger.warning(f"Could not open the cluster bus port {driver.cport}: {exc.strerror or exc}")
                    nursery.cancel_scope.cancel()
                    return
            logger.notice("Ready to accept connections tcp")
            if tls_listeners:
                logger.notice("Ready to accept connections tls")
            await server.run()
            nursery.cancel_scope.cancel()

    try:
        trio.run(run)
    finally:
        logger.warning("Shoal is now ready to exit, bye bye...")
        if config["pidfile"]:
            try:
                os.unlink(config["pidfile"])
            except OSError:
                pass
        logger.close()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
