"""Running the harness inside a private user + network namespace, where partitions are nftables rules.

Partition nemeses drop traffic between the nodes' loopback addresses with
nftables. That needs CAP_NET_ADMIN, which an unprivileged user has only in a
namespace of its own: ``unshare --user --map-root-user --net`` gives one,
with its own ``lo`` (down at first) and its own empty ruleset. So a
partition scenario re-executes the harness inside such a namespace, brings
``lo`` up, and runs the whole cluster, the clients and the nemesis there.
Nothing can leak: the rules and every socket vanish with the namespace, and
the host's network is never touched.

``INSIDE_ENV`` marks the re-executed process so it does not re-execute again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from cluster.netns import in_private_netns, loopback_up

__all__ = ["INSIDE_ENV", "apply_rules", "clear_rules", "inside", "loopback_up", "namespace_problem",
           "run_inside"]  # loopback_up is cluster.netns's, re-exported

INSIDE_ENV = "SHOAL_CHAOS_NETNS"
TABLE = "shoal_partition"

def inside() -> bool:
    return os.environ.get(INSIDE_ENV) == "1"


def namespace_problem() -> str | None:
    """None if a partition scenario can run here (in or through a namespace), else why not."""
    if shutil.which("nft") is None:
        return ("nft (nftables) is not installed here (`which nft` finds nothing); partitions need nftables "
                "rules inside `unshare --user --map-root-user --net` (Debian: apt-get install nftables)")
    if inside():
        return None
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed; partitions need a private user+network namespace"
    try:
        done = subprocess.run(["unshare", "--user", "--map-root-user", "--net", "nft", "list", "ruleset"],
                              capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot create a user+network namespace: {exc}"
    if done.returncode != 0:
        return ("cannot use nftables in a user+network namespace: "
                + done.stderr.decode(errors="replace").strip())
    return None


def run_inside(argv: list[str]) -> int:
    """Run ``python -m jepsen_like <argv>`` in a new user+network namespace; its exit status."""
    env = dict(os.environ)
    env[INSIDE_ENV] = "1"
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = repo + os.pathsep + env.get("PYTHONPATH", "")
    command = ["unshare", "--user", "--map-root-user", "--net", sys.executable, "-m", "jepsen_like", *argv]
    return subprocess.run(command, env=env).returncode


def apply_rules(ruleset: str) -> None:
    """Replace the partition table with ``ruleset`` (nft syntax) in one transaction."""
    if not in_private_netns():
        raise RuntimeError("refusing to change nftables rules outside a private user+network namespace")
    clear_rules()
    done = subprocess.run(["nft", "-f", "-"], input=ruleset.encode(), capture_output=True, timeout=10)
    if done.returncode != 0:
        raise RuntimeError(f"nft rejected the partition rules: {done.stderr.decode(errors='replace').strip()}")


def clear_rules() -> None:
    """Heal: drop the partition table if it exists."""
    if not in_private_netns():
        return
    subprocess.run(["nft", "delete", "table", "inet", TABLE], capture_output=True, timeout=10)
