"""History checkers: pure functions from a ``History`` to a verdict with its evidence.

* ``check_linearizable`` -- registers (read / write / cas), Wing-Gong-Lowe search per key;
* ``check_set`` -- lost, unexpected and recovered elements of add-then-read sets;
* ``check_counter`` -- every read within the bounds the increments allow;
* ``check_list_append`` -- Elle-style dependency cycles over list-append transactions.

Every result has a ``verdict`` (``"valid"``, ``"invalid"`` or ``"unknown"`` --
unknown is never to be read as valid) and a JSON-ready ``to_dict()``. No
checker does I/O, reads a clock (a time budget takes an injected clock
function) or uses global randomness: the same history gives the same result.
"""

from jepsen_like.checkers.counter import CounterResult, check_counter
from jepsen_like.checkers.linearizable import LinearizabilityResult, RegisterModel, check_linearizable
from jepsen_like.checkers.list_append import ListAppendResult, check_list_append
from jepsen_like.checkers.sets import SetResult, check_set
from jepsen_like.history import INVALID, UNKNOWN, VALID, combine_verdicts

__all__ = [
    "INVALID",
    "UNKNOWN",
    "VALID",
    "CounterResult",
    "LinearizabilityResult",
    "ListAppendResult",
    "RegisterModel",
    "SetResult",
    "check_counter",
    "check_linearizable",
    "check_list_append",
    "check_set",
    "combine_verdicts",
]
