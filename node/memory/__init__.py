"""Memory accounting, maxmemory and eviction (Redis's evict.c), MEMORY command support.

* ``node.memory.sizes`` -- what the process and one value take;
* ``node.memory.lfu`` -- the LRU clock and LFU counter arithmetic;
* ``node.memory.evict`` -- key sampling and the eviction pool;
* ``node.memory.manager`` -- ``Memory`` (``node.memory``): the used-memory
  estimate, the per-command maxmemory check, eviction, the cron step.
"""

from node.memory.manager import EVICT_FAIL, EVICT_OK, EVICT_RUNNING, OOM_ERROR, Memory, install

__all__ = ["EVICT_FAIL", "EVICT_OK", "EVICT_RUNNING", "OOM_ERROR", "Memory", "install"]
