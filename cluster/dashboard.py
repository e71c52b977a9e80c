"""``shoal dashboard``: a live web view of a cluster -- the slot map, the nodes, recent events.

A small HTTP server on trio (no framework) polls the cluster once a second
over the wire (CLUSTER NODES from every reachable node, INFO for memory,
clients and ops/s) and serves:

* ``/`` -- one page, no external assets: the 16384 slots as a 128 x 128
  grid coloured by the primary that owns each (grey: unowned; hatched
  outline: a slot being migrated), the nodes with role, health, memory and
  ops/s, and the recent events;
* ``/api/state`` -- the same as JSON, for scripts.

Events come from comparing one poll with the previous: a node marked
PFAIL/FAIL or recovered, a replica promoted (failover), slots changing
owner, migrations opening and closing. The server only listens on a
loopback address and only talks to loopback nodes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import deque

import trio

from cluster.resp import RespClient, RespError
from slots import SLOT_COUNT

__all__ = ["ClusterPoller", "main", "serve"]

_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
            "#7f7f7f", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd"]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _parse_info(text: str) -> dict[str, str]:
    return dict(line.split(":", 1) for line in text.split("\r\n") if ":" in line and not line.startswith("#"))


class ClusterPoller:
    """Reads the cluster's state over the wire and keeps the recent events (blocking I/O: run in a thread)."""

    def __init__(self, entry: str, max_events: int = 50) -> None:
        host, _, port = entry.rpartition(":")
        if not host.startswith("127."):
            raise ValueError("the dashboard only talks to loopback nodes (127.0.0.0/8)")
        self.entries = [(host, int(port))]
        self.events: deque = deque(maxlen=max_events)
        self.previous: dict | None = None
        self.colours: dict[str, str] = {}
        self._ops: dict[str, tuple[float, int]] = {}

    def _call(self, host: str, port: int, *args):
        with RespClient(host, port, timeout=1.0) as client:
            return client.call(*args)

    def poll(self) -> dict:
        now = time.time()
        lines = None
        for host, port in list(self.entries):
            try:
                lines = _text(self._call(host, port, "CLUSTER", "NODES"))
                break
            except (OSError, ConnectionError, RespError):
                continue
        if lines is None:
            return {"time": now, "reachable": False, "nodes": [], "slots": [], "events": list(self.events)}
        nodes = []
        owners: list[int] = [-1] * SLOT_COUNT
        migrating: set[int] = set()
        for line in lines.splitlines():
            parts = line.split()
            if len(parts) < 8:
                continue
            flags = parts[2].split(",")
            address = parts[1].split("@")[0]
            host, _, port = address.rpartition(":")
            node = {"id": parts[0], "address": address, "role": "primary" if "master" in flags else "replica",
                    "master": None if parts[3] == "-" else parts[3],
                    "health": "fail" if "fail" in flags else "pfail" if "fail?" in flags else "ok",
                    "slots": 0, "memory": None, "ops": None, "clients": None}
            index = len(nodes)
            for token in parts[8:]:
                if token.startswith("["):
                    migrating.add(int(token[1:].split("-")[0]))
                    continue
                lo, _, hi = token.partition("-")
                for slot in range(int(lo), int(hi or lo) + 1):
                    owners[slot] = index
                    node["slots"] += 1
            if node["health"] != "fail" and host.startswith("127."):
                try:
                    info = _parse_info(_text(self._call(host, int(port), "INFO")))
                    node["memory"] = int(info.get("used_memory", 0))
                    node["clients"] = int(info.get("connected_clients", 0))
                    total = int(info.get("total_commands_processed", 0))
                    last = self._ops.get(node["id"])
                    if last is not None and now > last[0]:
                        node["ops"] = round((total - last[1]) / (now - last[0]), 1)
                    self._ops[node["id"]] = (now, total)
                    if (host, int(port)) not in self.entries:
                        self.entries.append((host, int(port)))
                except (OSError, ConnectionError, RespError, ValueError):
                    node["health"] = "unreachable"
            if node["role"] == "primary" and node["id"] not in self.colours:
                self.colours[node["id"]] = _PALETTE[len(self.colours) % len(_PALETTE)]
            node["colour"] = self.colours.get(node["id"], "#9e9e9e")
            nodes.append(node)
        state = {"time": now, "reachable": True, "nodes": nodes,
                 "slots": [nodes[o]["colour"] if o >= 0 else "#e0e0e0" for o in owners],
                 "migrating": sorted(migrating), "covered": -1 not in owners}
        self._events(state)
        state["events"] = list(self.events)
        self.previous = state
        return state

    def _event(self, text: str) -> None:
        self.events.appendleft({"time": time.strftime("%H:%M:%S"), "text": text})

    def _events(self, state: dict) -> None:
        before = self.previous
        if before is None:
            self._event(f"watching {len(state['nodes'])} nodes")
            return
        old = {n["id"]: n for n in before["nodes"]}
        for node in state["nodes"]:
            was = old.get(node["id"])
            if was is None:
                self._event(f"node {node['address']} joined")
                continue
            if was["health"] != node["health"]:
                self._event(f"node {node['address']}: {was['health']} -> {node['health']}")
            if was["role"] == "replica" and node["role"] == "primary":
                self._event(f"failover: {node['address']} promoted to primary")
            elif was["role"] == "primary" and node["role"] == "replica":
                self._event(f"{node['address']} is now a replica")
            if was["slots"] != node["slots"] and was["role"] == node["role"] == "primary":
                self._event(f"{node['address']}: {was['slots']} -> {node['slots']} slots")
        for gone in set(old) - {n["id"] for n in state["nodes"]}:
            self._event(f"node {old[gone]['address']} left")
        opened = set(state["migrating"]) - set(before.get("migrating", []))
        closed = set(before.get("migrating", [])) - set(state["migrating"])
        if opened:
            self._event(f"migration started for {len(opened)} slot(s)")
        if closed:
            self._event(f"migration finished for {len(closed)} slot(s)")


PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Shoal dashboard</title>
<style>
body{font-family:sans-serif;margin:16px;color:#212121;background:#fafafa}
h1{font-size:20px;margin:0 0 8px} h2{font-size:15px;margin:14px 0 6px}
#wrap{display:flex;gap:24px;align-items:flex-start}
canvas{border:1px solid #bdbdbd;image-rendering:pixelated;background:#fff}
table{border-collapse:collapse;font-size:13px} td,th{padding:3px 8px;border-bottom:1px solid #e0e0e0;text-align:left}
.sw{display:inline-block;width:12px;height:12px;border-radius:2px;vertical-align:middle}
.ok{color:#2e7d32}.pfail{color:#ef6c00}.fail,.unreachable{color:#c62828;font-weight:bold}
#events{font-size:13px;max-height:260px;overflow:auto} #status{font-size:13px;color:#616161}
</style></head><body>
<h1>Shoal cluster</h1><div id="status">connecting...</div>
<div id="wrap"><div><h2>Slots (128 x 128, coloured by owner)</h2><canvas id="map" width="384" height="384"></canvas></div>
<div><h2>Nodes</h2><table id="nodes"></table><h2>Recent events</h2><div id="events"></div></div></div>
<script>
const fmt=b=>b==null?'-':b>1<<30?(b/(1<<30)).toFixed(1)+' GB':b>1<<20?(b/(1<<20)).toFixed(1)+' MB':(b/1024).toFixed(0)+' KB';
async function tick(){
 try{const s=await (await fetch('/api/state')).json();
  const c=document.getElementById('map').getContext('2d');
  for(let i=0;i<s.slots.length;i++){c.fillStyle=s.slots[i];c.fillRect((i%128)*3,Math.floor(i/128)*3,3,3);}
  c.strokeStyle='#000';for(const m of (s.migrating||[])){c.strokeRect((m%128)*3,Math.floor(m/128)*3,3,3);}
  let rows='<tr><th></th><th>address</th><th>role</th><th>health</th><th>slots</th><th>memory</th><th>ops/s</th><th>clients</th></tr>';
  for(const n of s.nodes){rows+=`<tr><td><span class="sw" style="background:${n.role=='primary'?n.colour:'#fff;border:1px solid '+n.colour}"></span></td>`+
   `<td>${n.address}</td><td>${n.role}</td><td class="${n.health}">${n.health}</td><td>${n.slots}</td><td>${fmt(n.memory)}</td>`+
   `<td>${n.ops==null?'-':n.ops}</td><td>${n.clients==null?'-':n.clients}</td></tr>`;}
  document.getElementById('nodes').innerHTML=rows;
  document.getElementById('events').innerHTML=s.events.map(e=>`<div>${e.time} ${e.text}</div>`).join('');
  document.getElementById('status').textContent=(s.reachable?(s.covered?'all 16384 slots covered':'NOT all slots covered'):'cluster unreachable')+' - updated '+new Date(s.time*1000).toLocaleTimeString();
 }catch(e){document.getElementById('status').textContent='dashboard error: '+e;}
}
tick();setInterval(tick,1000);
</script></body></html>
"""


async def _handle(stream, state_box) -> None:
    try:
        with trio.move_on_after(10):
            request = b""
            while b"\r\n\r\n" not in request and len(request) < 16384:
                data = await stream.receive_some(4096)
                if not data:
                    return
                request += data
            line = request.split(b"\r\n", 1)[0].decode("latin-1").split()
            path = line[1] if len(line) >= 2 else "/"
            if path == "/":
                body, kind, status = PAGE.encode(), "text/html; charset=utf-8", "200 OK"
            elif path == "/api/state":
                body, kind, status = json.dumps(state_box["state"]).encode(), "application/json", "200 OK"
            else:
                body, kind, status = b"not found\n", "text/plain", "404 Not Found"
            head = (f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
                    "Cache-Control: no-store\r\nConnection: close\r\n\r\n").encode()
            await stream.send_all(head + body)
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass
    finally:
        await stream.aclose()


async def serve(entry: str, host: str, port: int, *, interval: float = 1.0, task_status=trio.TASK_STATUS_IGNORED):
    """Poll the cluster every ``interval`` s and serve the page until cancelled."""
    if not host.startswith("127."):
        raise ValueError("the dashboard only listens on loopback addresses (127.0.0.0/8)")
    poller = ClusterPoller(entry)
    state_box = {"state": await trio.to_thread.run_sync(poller.poll)}

    async def refresh():
        while True:
            await trio.sleep(interval)
            state_box["state"] = await trio.to_thread.run_sync(poller.poll)

    listeners = await trio.open_tcp_listeners(port, host=host)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(refresh)
        actual = listeners[0].socket.getsockname()[1]
        task_status.started(actual)
        await trio.serve_listeners(lambda stream: _handle(stream, state_box), listeners)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="shoal dashboard", description="A live web view of a Shoal cluster.")
    parser.add_argument("--cluster", default="127.0.0.1:7000", help="HOST:PORT of any node")
    parser.add_argument("--host", default="127.0.0.1", help="address to serve the page on (loopback)")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)

    async def run():
        async with trio.open_nursery() as nursery:
            actual = await nursery.start(serve, args.cluster, args.host, args.port)
            print(f"Shoal dashboard on http://{args.host}:{actual}/ (Ctrl-C stops it)", flush=True)

    try:
        trio.run(run)
    except KeyboardInterrupt:
        pass
    except ValueError as exc:
        print(f"shoal dashboard: {exc}", file=sys.stderr)
        return 2
    return 0
