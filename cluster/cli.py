"""``shoal``: run a local Shoal cluster.

    shoal up [--primaries 3] [--replicas-per-primary 1] [--port 7000] [--node-timeout 5000]
             [--host 127.0.0.1] [--dir var] [--standalone]
    shoal status [--port 7000] [--host 127.0.0.1]
    shoal down [--dir var]
    shoal stop --node HOST:PORT [--dir var] [--wait 60]
    shoal restart --node HOST:PORT [--dir var] [--wait 60]
    shoal chaos list | run SCENARIO [--engine shoal|redis] [--nodes 6] [--time 20] [--seed N]

``up`` starts ``primaries * (1 + replicas)`` shoal-server processes on
consecutive ports, each in ``<dir>/<port>/`` (log, pid file, nodes.conf), then
forms the cluster the way ``redis-cli --cluster create`` does: distinct config
epochs, slots split evenly over the primaries, MEET, then CLUSTER REPLICATE
for the replicas, and waits until every node reports ``cluster_state:ok`` and
all agree on the slot map. If the nodes come back from their nodes.conf
(a restart), it only waits for them. ``down`` stops every node under
``<dir>`` by the PID it wrote, and waits for each to exit.

``stop`` stops one node of such a cluster without losing acknowledged writes:
if it is a primary serving slots with a healthy replica (link up, not
failing), it first runs a coordinated manual failover -- ``CLUSTER FAILOVER``
on the replica with the highest replication offset: the primary pauses its
writers, the replica catches up to the last byte and takes the slots, the
paused writers get MOVED -- and waits until the roles have switched (the
replica a primary, the old primary a replica of it). Then the node gets
SIGTERM by the PID in its pid file and ``stop`` waits for it to exit. A
replica, a primary without a healthy replica, or a standalone node is just
stopped. ``restart`` does the same and starts the node again in its
directory with the same node timeout; it rejoins from its nodes.conf (a
demoted primary comes back as a replica of its successor) and ``restart``
waits until its replication link is up and the cluster is ok.

Nodes are started with ``repl-diskless-sync-delay 0``: a restarted node's
full sync starts at once instead of after Redis's default 5 s wait for other
replicas (a local cluster rarely has two replicas asking together).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cluster.resp import RespClient, RespError
from cluster.waiting import wait_until
from slots import SLOT_COUNT

__all__ = ["main"]


def _call(host: str, port: int, *args, timeout: float = 2.0):
    with RespClient(host, port, timeout=timeout) as c:
        return c.call(*args)


def _ping(host: str, port: int) -> bool:
    try:
        return _call(host, port, "PING", timeout=0.5) == "PONG"
    except (OSError, RespError, ConnectionError):
        return False


def _node_dir(base: str, port: int) -> Path:
    return Path(base).resolve() / str(port)


_wait = wait_until


def _start_node(args, port: int, cluster: bool) -> subprocess.Popen:
    node_dir = _node_dir(args.dir, port)
    node_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable, "-m", "node.main",
        "--port", str(port), "--bind", args.host, "--dir", str(node_dir),
        "--logfile", str(node_dir / "shoal.log"), "--pidfile", str(node_dir / "shoal.pid"),
        "--save", "", "--repl-diskless-sync-delay", "0",
    ]
    if cluster:
        argv += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                 "--cluster-node-timeout", str(args.node_timeout)]
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)


def _info(host: str, port: int) -> dict[str, str]:
    text = _call(host, port, "CLUSTER", "INFO").decode()
    return dict(line.split(":", 1) for line in text.split("\r\n") if ":" in line)


def _nodes(host: str, port: int) -> list[list[str]]:
    text = _call(host, port, "CLUSTER", "NODES").decode()
    return [line.split() for line in text.splitlines() if line.strip()]


def _slot_signature(host: str, port: int) -> str:
    """What redis-cli compares to decide that nodes agree: ids and their slot tokens."""
    return "|".join(sorted(f"{f[0]}:{' '.join(sorted(t for t in f[8:] if not t.startswith('[')))}"
                           for f in _nodes(host, port)))


def form_cluster(host: str, ports: list[int], primaries: int, timeout: float = 60.0) -> None:
    """Join fresh nodes into a cluster like ``redis-cli --cluster create``."""
    fresh = [int(_info(host, p)["cluster_known_nodes"]) == 1 for p in ports]
    if all(fresh):
        for i, port in enumerate(ports):
            _call(host, port, "CLUSTER", "SET-CONFIG-EPOCH", i + 1)
        per = SLOT_COUNT // primaries
        for i, port in enumerate(ports[:primaries]):
            start = i * per
            end = SLOT_COUNT - 1 if i == primaries - 1 else start + per - 1
            _call(host, port, "CLUSTER", "ADDSLOTSRANGE", start, end)
        for port in ports[1:]:
            _call(host, ports[0], "CLUSTER", "MEET", host, port)
        _wait(lambda: all(len([n for n in _nodes(host, p) if "handshake" not in n[2]]) == len(ports)
                          for p in ports), timeout, "every node to know every other")
        ids = [_call(host, p, "CLUSTER", "MYID").decode() for p in ports]
        for i, port in enumerate(ports[primaries:]):
            _call(host, port, "CLUSTER", "REPLICATE", ids[i % primaries])
    elif not any(fresh):
        pass  # restarted from nodes.conf: nothing to do but wait
    else:
        raise RuntimeError("some nodes already belong to a cluster and some are fresh; "
                           "run `shoal down` and remove the data directory to start over")
    _wait(lambda: all(_info(host, p)["cluster_state"] == "ok" for p in ports), timeout,
          "cluster_state:ok on every node")
    _wait(lambda: len({_slot_signature(host, p) for p in ports}) == 1, timeout,
          "all nodes to agree on the slot map")
    replicas = len(ports) - primaries
    _wait(lambda: all(sum("slave" in f[2].split(",") for f in _nodes(host, p)) == replicas for p in ports),
          timeout, "every node to know every replica's role")


def cmd_up(args) -> int:
    count = 1 if args.standalone else args.primaries * (1 + args.replicas_per_primary)
    ports = [args.port + i for i in range(count)]
    busy = [p for p in ports if _ping(args.host, p)]
    if busy and len(busy) != len(ports):
        print(f"Ports {busy} already answer; stop those servers first.")
        return 1
    procs = {}
    if not busy:
        for port in ports:
            procs[port] = _start_node(args, port, not args.standalone)
        deadline = time.monotonic() + 30
        for port, proc in procs.items():
            while not _ping(args.host, port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    err = proc.stderr.read().decode(errors="replace") if proc.poll() is not None else ""
                    print(f"shoal-server on port {port} did not start: {err.strip()} "
                          f"(see {_node_dir(args.dir, port) / 'shoal.log'})")
                    _stop_ports(args.dir, ports)
                    return 1
                time.sleep(0.05)
    if not args.standalone:
        try:
            form_cluster(args.host, ports, args.primaries)
        except (TimeoutError, RuntimeError, RespError) as exc:
            print(f"Could not form the cluster: {exc}")
            return 1
    first = f"{args.host}:{ports[0]}"
    if args.standalone:
        print(f"Shoal node up on {first}.")
        print(f"  connect:  redis-cli -h {args.host} -p {ports[0]}")
    else:
        print(f"Shoal cluster up: {args.primaries} primaries + {args.primaries * args.replicas_per_primary} "
              f"replicas on {args.host}:{ports[0]}-{ports[-1]}.")
        print(f"  connect:  redis-cli -c -h {args.host} -p {ports[0]}")
        print(f"  python:   redis.cluster.RedisCluster(host={args.host!r}, port={ports[0]})")
        print(f"  check:    redis-cli --cluster check {first}")
        print(f"  status:   shoal status --port {ports[0]}")
    print(f"  logs:     {Path(args.dir).resolve()}/<port>/shoal.log")
    print("  stop:     make down   (or: shoal down)")
    return 0


def _stop_ports(base: str, ports: list[int] | None = None) -> list[tuple[int, int]]:
    """SIGTERM every node under ``base`` (or only ``ports``) by its pid file; returns (port, pid) stopped."""
    stopped = []
    root = Path(base).resolve()
    if not root.is_dir():
        return stopped
    for pidfile in sorted(root.glob("*/shoal.pid")):
        port = int(pidfile.parent.name) if pidfile.parent.name.isdigit() else -1
        if ports is not None and port not in ports:
            continue
        try:
            pid = int(pidfile.read_text().strip())
            os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError):
            pidfile.unlink(missing_ok=True)
            continue
        stopped.append((port, pid))
    for port, pid in stopped:
        _await_exit_or_kill(pid, port, 10)
    return stopped


def _await_exit_or_kill(pid: int, port: int, seconds: int) -> None:
    """Wait for a node sent SIGTERM to exit; SIGKILL it after ``seconds``."""
    for _ in range(seconds * 20):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    print(f"Process {pid} (port {port}) did not exit within {seconds} s after SIGTERM; sending SIGKILL.")
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def cmd_down(args) -> int:
    stopped = _stop_ports(args.dir)
    if not stopped:
        print(f"No running nodes under {Path(args.dir).resolve()}.")
    for port, pid in stopped:
        print(f"Stopped the node on port {port} (pid {pid}).")
    return 0


def _split_node(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--node must be HOST:PORT, got {text!r}")
    return host, int(port)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _repl_info(host: str, port: int) -> dict[str, str]:
    text = _text(_call(host, port, "INFO", "replication"))
    return dict(line.split(":", 1) for line in text.split("\r\n") if ":" in line)


def _role(host: str, port: int) -> str:
    try:
        return _text(_call(host, port, "ROLE", timeout=1.0)[0])
    except (OSError, RespError, ConnectionError, IndexError):
        return "?"


def _best_replica(host: str, port: int) -> tuple[str, int] | None:
    """The healthy replica of the primary at host:port with the highest offset, or None.

    None too when the node is a replica, serves no slots, or is not in cluster mode."""
    try:
        nodes = _nodes(host, port)
    except RespError:
        return None  # standalone
    me = next((f for f in nodes if "myself" in f[2].split(",")), None)
    if me is None or "master" not in me[2].split(",") or len(me) <= 8:
        return None
    best, best_offset = None, -1
    for f in nodes:
        flags = f[2].split(",")
        if f[3] != me[0] or "slave" not in flags or "fail" in flags or "fail?" in flags or f[7] != "connected":
            continue
        rhost, _, rport = f[1].split("@")[0].rpartition(":")
        try:
            info = _repl_info(rhost, int(rport))
        except (OSError, RespError, ConnectionError, ValueError):
            continue
        if info.get("master_link_status") != "up":
            continue
        offset = int(info.get("slave_repl_offset", "-1"))
        if offset > best_offset:
            best, best_offset = (rhost, int(rport)), offset
    return best


def _pid_of(base: str, port: int) -> int | None:
    pidfile = _node_dir(base, port) / "shoal.pid"
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def _stop_node(args) -> tuple[int, dict | None]:
    """``shoal stop``'s work; returns (exit code, what a restart needs to start the node again)."""
    try:
        host, port = _split_node(args.node)
    except ValueError as exc:
        print(exc)
        return 2, None
    pid = _pid_of(args.dir, port)
    if pid is None:
        print(f"No running node with a pid file under {_node_dir(args.dir, port)}.")
        return 1, None
    settings = {"cluster": False, "node_timeout": 5000}
    try:
        mode = _call(host, port, "CONFIG", "GET", "cluster-enabled")
        settings["cluster"] = len(mode) == 2 and _text(mode[1]) == "yes"
        if settings["cluster"]:
            settings["node_timeout"] = int(_text(_call(host, port, "CONFIG", "GET", "cluster-node-timeout")[1]))
    except (OSError, RespError, ConnectionError, ValueError, IndexError) as exc:
        print(f"{host}:{port} does not answer ({exc}); stopping it by PID.")
    heir = _best_replica(host, port) if settings["cluster"] else None
    if heir is not None:
        heir_addr = f"{heir[0]}:{heir[1]}"
        print(f"{host}:{port} is a primary: coordinated failover to its replica {heir_addr} first ...")
        try:
            _call(heir[0], heir[1], "CLUSTER", "FAILOVER", timeout=5.0)
            _wait(lambda: _role(heir[0], heir[1]) == "master" and _role(host, port) == "slave", args.wait,
                  f"{heir_addr} to become primary and {host}:{port} its replica")
        except (TimeoutError, OSError, RespError, ConnectionError) as exc:
            print(f"The failover did not complete ({exc}); {host}:{port} keeps running.")
            return 1, None
        print(f"{heir_addr} is now the primary; {host}:{port} is its replica.")
    elif settings["cluster"] and _role(host, port) == "master":
        print(f"{host}:{port} is a primary without a healthy replica: its slots are unavailable until it is back.")
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    _await_exit_or_kill(pid, port, 20)
    print(f"Stopped the node on port {port} (pid {pid}).")
    settings.update(host=host, port=port)
    return 0, settings


def cmd_stop(args) -> int:
    return _stop_node(args)[0]


def cmd_restart(args) -> int:
    code, settings = _stop_node(args)
    if code:
        return code
    host, port = settings["host"], settings["port"]
    start_args = argparse.Namespace(dir=args.dir, host=host, node_timeout=settings["node_timeout"])
    proc = _start_node(start_args, port, settings["cluster"])
    deadline = time.monotonic() + 30
    while not _ping(host, port):
        if proc.poll() is not None or time.monotonic() > deadline:
            print(f"shoal-server on port {port} did not start (see {_node_dir(args.dir, port) / 'shoal.log'})")
            return 1
        time.sleep(0.05)
    print(f"Started the node on port {port} (pid {proc.pid}).")
    if settings["cluster"]:
        try:
            _wait(lambda: _info(host, port)["cluster_state"] == "ok", args.wait, "cluster_state:ok")
            if _role(host, port) == "slave":
                _wait(lambda: _repl_info(host, port).get("master_link_status") == "up", args.wait,
                      "its replication link to be up")
                print(f"{host}:{port} is back as a replica, in sync with its primary.")
        except (TimeoutError, OSError, RespError, ConnectionError) as exc:
            print(f"{host}:{port} started but is not in the cluster yet: {exc}")
            return 1
    return 0


def cmd_status(args) -> int:
    try:
        info = _info(args.host, args.port)
        nodes = _nodes(args.host, args.port)
    except RespError:
        up = _ping(args.host, args.port)
        print(f"{args.host}:{args.port} {'up (standalone)' if up else 'down'}")
        return 0 if up else 1
    except OSError:
        print(f"{args.host}:{args.port} down")
        return 1
    print(f"cluster_state: {info.get('cluster_state')}   known nodes: {info.get('cluster_known_nodes')}   "
          f"current epoch: {info.get('cluster_current_epoch')}")
    print(f"{'id':<10} {'address':<22} {'role':<8} {'flags':<18} {'epoch':>5} {'link':<12} slots")
    for f in sorted(nodes, key=lambda f: f[1]):
        flags = f[2].split(",")
        role = "primary" if "master" in flags else "replica" if "slave" in flags else "?"
        extra = ",".join(x for x in flags if x not in ("master", "slave")) or "-"
        slots = " ".join(f[8:]) or ("(of " + f[3][:8] + ")" if f[3] != "-" else "-")
        print(f"{f[0][:8]:<10} {f[1].split('@')[0]:<22} {role:<8} {extra:<18} {f[6]:>5} {f[7]:<12} {slots}")
    return 0 if info.get("cluster_state") == "ok" else 2


def cmd_chaos(args) -> int:
    """Run the chaos harness as ``python -m jepsen_like`` (a process boundary: cluster/ sits below it)."""
    env = dict(os.environ)
    repo = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = repo + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "jepsen_like", *args.rest], env=env).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="shoal", description="Run a local Shoal cluster.")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start nodes and form the cluster")
    up.add_argument("--primaries", type=int, default=3)
    up.add_argument("--replicas-per-primary", type=int, default=1)
    up.add_argument("--node-timeout", type=int, default=5000, help="cluster-node-timeout in ms")
    up.add_argument("--standalone", action="store_true", help="one node without cluster mode")
    up.set_defaults(func=cmd_up)
    status = sub.add_parser("status", help="show the nodes, roles, slots and links")
    status.set_defaults(func=cmd_status)
    down = sub.add_parser("down", help="stop every node started under --dir")
    down.set_defaults(func=cmd_down)
    stop = sub.add_parser("stop", help="stop one node (a primary hands over to its replica first)")
    stop.set_defaults(func=cmd_stop)
    restart = sub.add_parser("restart", help="stop one node as `stop` does, then start it again")
    restart.set_defaults(func=cmd_restart)
    for p in (stop, restart):
        p.add_argument("--node", required=True, help="HOST:PORT of the node")
        p.add_argument("--dir", default="var")
        p.add_argument("--wait", type=float, default=60.0, help="seconds to wait for each step")
    chaos = sub.add_parser("chaos", help="chaos scenarios: `shoal chaos list`, `shoal chaos run SCENARIO`",
                           add_help=False)
    chaos.add_argument("rest", nargs=argparse.REMAINDER)
    chaos.set_defaults(func=cmd_chaos)
    sub.add_parser("backup", add_help=False,  # parsed by cluster.backup (create|list|restore|prune|keygen)
                   help="backup sets: `shoal backup create|list|restore|prune|keygen`")
    sub.add_parser("dashboard", add_help=False,  # parsed by cluster.dashboard
                   help="a live web view: `shoal dashboard [--cluster HOST:PORT] [--port 8080]`")
    from cluster.admin import build_parser as add_admin_commands  # create/check/reshard/... (cluster.admin)

    add_admin_commands(sub)
    for p in (up, status, down):
        p.add_argument("--port", type=int, default=7000)
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--dir", default="var")
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["chaos"]:  # everything after it (options included) belongs to the harness
        return cmd_chaos(argparse.Namespace(rest=argv[1:]))
    if argv[:1] == ["dashboard"]:
        from cluster.dashboard import main as dashboard_main

        return dashboard_main(argv[1:])
    if argv[:1] == ["backup"]:
        from cluster.backup import main as backup_main
        return backup_main(argv[1:])
    args = parser.parse_args(argv)
    if getattr(args, "admin", None) is not None:
        from cluster.admin import run as run_admin

        return run_admin(args)
    if args.command in ("stop", "restart"):
        if not args.node.startswith("127."):
            parser.error("Shoal's local launcher only manages loopback addresses (127.0.0.0/8)")
        return args.func(args)
    if not args.host.startswith("127."):
        parser.error("Shoal's local launcher only binds loopback addresses (127.0.0.0/8)")
    if args.command == "up" and (args.primaries < 1 or args.replicas_per_primary < 0):
        parser.error("--primaries must be >= 1 and --replicas-per-primary >= 0")
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
