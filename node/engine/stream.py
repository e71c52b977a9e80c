"""The stream value: entries, consumer groups, pending entries lists, consumers.

Pure data structures (no trio, no clock, no config): callers pass "now" and
the node-size limits in.

Entry IDs are single Python ints, ``ms << 64 | seq``: comparing two IDs is
comparing two ints, and ``id + 1`` / ``id - 1`` are Redis's
``streamIncrID``/``streamDecrID`` (with carry between the halves for free).

Why the entries are kept in *nodes*
-----------------------------------
Redis stores a stream as a radix tree of listpacks ("nodes"): an entry is
appended to the last node until that node holds ``stream-node-max-entries``
entries (live or deleted) or its listpack would reach
``stream-node-max-bytes``; then a new node starts. Approximate trimming
(``MAXLEN ~``/``MINID ~``) only ever drops whole nodes, and ``XINFO STREAM``
reports the number of nodes and radix-tree nodes -- so which entries share a
node is visible to clients. ``_Node`` mirrors one listpack: the master entry
(first ID and field names), the entries in order including tombstones of
deleted ones, the live and deleted counters, and the listpack's exact byte
size (``lpBytes``), computed from Redis's listpack encoding rules, so the
"is the node full" decision is the same one Redis makes.

Deleted entries stay in their node as tombstones (``None`` values) until the
whole node goes, exactly as Redis flags them in the listpack.

Consumer groups
---------------
A group has its last delivered ID, its ``entries_read`` counter (-1 when
unknown, Redis's ``SCG_INVALID_ENTRIES_READ``), its PEL (ID -> ``Nack``,
ordered by ID), and its consumers by name. A ``Nack`` is shared between the
group PEL and its owner's PEL, as in Redis.

Ordered listings (groups, consumers) sort names as bytes, which is the
radix-tree order Redis lists them in.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from sortedcontainers import SortedDict

from node.resp.parser import string2ll

__all__ = [
    "ID_MAX", "MASK64", "Consumer", "Group", "Nack", "Stream", "format_id", "make_id", "parse_id_text",
]

MASK64 = (1 << 64) - 1
ID_MAX = (1 << 128) - 1
INVALID_ENTRIES_READ = -1


def make_id(ms: int, seq: int) -> int:
    return (ms << 64) | seq


def format_id(sid: int) -> bytes:
    return b"%d-%d" % (sid >> 64, sid & MASK64)


_SPACES = b" \t\n\v\f\r"


def _strtoull(text: bytes) -> int | None:
    """C's ``string2ull`` (strict parse, falling back to strtoull) on a NUL-free string."""
    value = string2ll(text)
    if value is not None:
        return value if value >= 0 else None
    i = 0
    n = len(text)
    while i < n and text[i] in _SPACES:
        i += 1
    negative = False
    if i < n and text[i] in b"+-":
        negative = text[i] == 0x2D
        i += 1
    digits = text[i:]
    if not digits or not digits.isdigit() or not digits.isascii():
        return None
    value = int(digits)
    if value > MASK64:
        return None
    return (-value) & MASK64 if negative else value


def parse_id_text(arg: bytes, missing_seq: int, strict: bool, allow_seq_star: bool = False):
    """Redis's ``streamGenericParseIDOrReply`` without the reply.

    Returns ``(id, seq_given)`` or None when the ID is invalid. ``-``/``+``
    are the minimum/maximum IDs unless ``strict``; ``<ms>`` alone takes
    ``missing_seq``; ``<ms>-*`` (only with ``allow_seq_star``) gives
    ``seq_given`` False.
    """
    if len(arg) > 127:
        return None
    nul = arg.find(b"\0")
    if nul != -1:
        arg = arg[:nul]
    if arg == b"-":
        return None if strict else (0, True)
    if arg == b"+":
        return None if strict else (ID_MAX, True)
    dash = arg.find(b"-")
    if dash == -1:
        ms = _strtoull(arg)
        if ms is None:
            return None
        return (ms << 64) | missing_seq, True
    ms = _strtoull(arg[:dash])
    if ms is None:
        return None
    tail = arg[dash + 1 :]
    if allow_seq_star and tail == b"*":
        return ms << 64, False
    seq = _strtoull(tail)
    if seq is None:
        return None
    return (ms << 64) | seq, True


# ---------------------------------------------------------------- listpack sizes
# Bytes one element takes in a listpack: encoding header + data + back-length.


def _lp_int_size(v: int) -> int:
    if 0 <= v <= 127:
        return 2
    if -4096 <= v <= 4095:
        return 3
    if -32768 <= v <= 32767:
        return 4
    if -8388608 <= v <= 8388607:
        return 5
    if -2147483648 <= v <= 2147483647:
        return 6
    return 10


# First bytes a string that string2ll accepts can start with ("-" or a digit).
_INT_START = frozenset(b"-0123456789")


def _lp_str_size(data: bytes) -> int:
    n = len(data)
    if n <= 20 and n and data[0] in _INT_START:
        v = string2ll(data)
        if v is not None:
            return _lp_int_size(v)
    if n < 64:
        return n + 2  # 1-byte header + data, back-length of 1 byte
    if n < 4096:
        enc = 2 + n
    else:
        enc = 5 + n
    if enc <= 127:
        return enc + 1
    if enc < 16383:
        return enc + 2
    if enc < 2097151:
        return enc + 3
    if enc < 268435455:
        return enc + 4
    return enc + 5


def _signed64(v: int) -> int:
    v &= MASK64
    return v - (1 << 64) if v >> 63 else v


def _lp_diff_size(d: int) -> int:
    """Listpack size of an ID delta, as the int64 it is stored as."""
    if 0 <= d <= 127:
        return 2
    return _lp_int_size(_signed64(d))


_LP_EMPTY = 7  # 6-byte header + end byte
_LISTPACK_MAX_SIZE = 1 << 30
# Counts at which a listpack integer needs one more byte than for the count just below.
_INT_SIZE_STEPS = frozenset((128, 4096, 32768, 8388608, 2147483648))


class _Node:
    """One listpack of the stream (see the module docstring)."""

    __slots__ = ("master", "mfields", "ids", "values", "live", "dead", "nbytes")

    def __init__(self, master: int, fields: tuple) -> None:
        self.master = master
        self.mfields = fields  # field names of the master entry
        self.ids: list[int] = []
        self.values: list = []  # flat (f1, v1, f2, v2...) tuples; None = deleted
        self.live = 0
        self.dead = 0
        # header+end, then count, deleted, num-fields, the fields, the 0 terminator
        self.nbytes = _LP_EMPTY + 2 + 2 + _lp_int_size(len(fields)) + sum(map(_lp_str_size, fields)) + 2

    def set_counters(self, live: int, dead: int) -> None:
        self.nbytes += (_lp_int_size(live) - _lp_int_size(self.live)) + (_lp_int_size(dead) - _lp_int_size(self.dead))
        self.live = live
        self.dead = dead

    def copy(self) -> "_Node":
        node = _Node.__new__(_Node)
        node.master = self.master
        node.mfields = self.mfields
        node.ids = self.ids[:]
        node.values = self.values[:]
        node.live = self.live
        node.dead = self.dead
        node.nbytes = self.nbytes
        return node


class Nack:
    """A pending entry: who has it, when it was last delivered, how many times."""

    __slots__ = ("delivery_time", "delivery_count", "consumer")

    def __init__(self, consumer: "Consumer | None", now: int) -> None:
        self.delivery_time = now
        self.delivery_count = 1
        self.consumer = consumer


class Consumer:
    __slots__ = ("name", "seen_time", "pel")

    def __init__(self, name: bytes, now: int) -> None:
        self.name = name
        self.seen_time = now
        self.pel: SortedDict = SortedDict()  # id -> Nack (shared with the group PEL)


class Group:
    __slots__ = ("last_id", "entries_read", "pel", "consumers")

    def __init__(self, last_id: int, entries_read: int) -> None:
        self.last_id = last_id
        self.entries_read = entries_read
        self.pel: SortedDict = SortedDict()  # id -> Nack
        self.consumers: dict[bytes, Consumer] = {}

    def consumer(self, name: bytes) -> Consumer | None:
        return self.consumers.get(name)

    def create_consumer(self, name: bytes, now: int) -> Consumer | None:
        """A new consumer, or None if one with that name exists."""
        if name in self.consumers:
            return None
        consumer = self.consumers[name] = Consumer(name, now)
        return consumer

    def delete_consumer(self, consumer: Consumer) -> int:
        """Remove ``consumer`` and its pending entries; returns how many were pending."""
        pending = len(consumer.pel)
        pel = self.pel
        for sid in consumer.pel:
            del pel[sid]
        del self.consumers[consumer.name]
        return pending

    def sorted_consumers(self) -> list[Consumer]:
        return [self.consumers[name] for name in sorted(self.consumers)]

    def ack(self, sid: int) -> bool:
        nack = self.pel.pop(sid, None)
        if nack is None:
            return False
        del nack.consumer.pel[sid]
        return True

    def deliver(self, sid: int, consumer: Consumer, now: int) -> None:
        """Record that ``sid`` was delivered to ``consumer`` by XREADGROUP ``>``."""
        nack = self.pel.get(sid)
        if nack is None:
            nack = Nack(consumer, now)
            self.pel[sid] = nack
            consumer.pel[sid] = nack
            return
        # Already pending (the group's ID was moved back): the entry changes owner.
        if nack.consumer is not None:
            nack.consumer.pel.pop(sid, None)
        nack.consumer = consumer
        nack.delivery_time = now
        nack.delivery_count = 1
        consumer.pel[sid] = nack

    def copy(self) -> "Group":
        group = Group(self.last_id, self.entries_read)
        nacks = {}
        for sid, nack in self.pel.items():
            twin = Nack(None, nack.delivery_time)
            twin.delivery_count = nack.delivery_count
            nacks[sid] = twin
        group.pel = SortedDict(nacks)
        for name, consumer in self.consumers.items():
            twin = Consumer(name, consumer.seen_time)
            own = {}
            for sid in consumer.pel:
                nack = nacks[sid]
                nack.consumer = twin
                own[sid] = nack
            twin.pel = SortedDict(own)
            group.consumers[name] = twin
        return group


class Stream:
    """A Redis stream (see the module docstring)."""

    __slots__ = ("nodes", "firsts", "length", "last_id", "first_id", "max_deleted", "entries_added", "groups")

    def __init__(self) -> None:
        self.nodes: list[_Node] = []
        self.firsts: list[int] = []  # master ID of each node, for bisection
        self.length = 0
        self.last_id = 0
        self.first_id = 0  # recorded-first-entry-id
        self.max_deleted = 0  # max-deleted-entry-id
        self.entries_added = 0
        self.groups: dict[bytes, Group] | None = None

    def __len__(self) -> int:
        return self.length

    # ------------------------------------------------------------- appending

    def next_auto_id(self, now_ms: int) -> int | None:
        """The ID ``*`` stands for (Redis's streamNextID), or None when it would not be greater."""
        last = self.last_id
        if now_ms > last >> 64:
            return now_ms << 64
        if last == ID_MAX:
            return None
        return last + 1

    def append(self, sid: int, fv: tuple, max_bytes: int, max_entries: int) -> None:
        """Add an entry (the caller checked that ``sid`` > ``last_id``).

        ``fv`` is the flat field/value tuple. ``max_bytes``/``max_entries`` are
        ``stream-node-max-bytes``/``stream-node-max-entries``.
        """
        nodes = self.nodes
        nitems = len(fv)
        node = None
        if nodes:
            node = nodes[-1]
            limit = max_bytes if 0 < max_bytes <= _LISTPACK_MAX_SIZE else _LISTPACK_MAX_SIZE
            if nitems == 2:
                total = len(fv[0]) + len(fv[1])
            else:
                total = 0
                for item in fv:
                    total += len(item)
            if node.nbytes + total >= limit or (max_entries and node.live + node.dead >= max_entries):
                node = None
        numfields = nitems >> 1
        if node is None:
            node = _Node(sid, fv[0::2])
            nodes.append(node)
            self.firsts.append(sid)
            same = True
        elif nitems == 2:
            mfields = node.mfields
            same = len(mfields) == 1 and mfields[0] == fv[0]
        else:
            same = fv[0::2] == node.mfields
        # the entry: flags, ms-diff, seq-diff, [num-fields, fields...], values, lp-count
        master = node.master
        d = (sid >> 64) - (master >> 64)
        size = 4 if 0 <= d <= 127 else 2 + _lp_diff_size(d)
        d = (sid & MASK64) - (master & MASK64)
        size += 2 if 0 <= d <= 127 else _lp_diff_size(d)
        lp_count = numfields + 3
        if same:
            if nitems == 2:
                value = fv[1]
                n = len(value)
                if n < 64 and (not n or value[0] not in _INT_START):
                    size += n + 2
                else:
                    size += _lp_str_size(value)
            else:
                for value in fv[1::2]:
                    size += _lp_str_size(value)
        else:
            size += _lp_int_size(numfields)
            for item in fv:
                size += _lp_str_size(item)
            lp_count += numfields + 1
        size += 2 if lp_count <= 127 else _lp_int_size(lp_count)
        # node.set_counters(live + 1, dead), without the work when the count's size is unchanged
        live = node.live + 1
        if live in _INT_SIZE_STEPS:
            size += _lp_int_size(live) - _lp_int_size(live - 1)
        node.live = live
        node.nbytes += size
        node.ids.append(sid)
        node.values.append(fv)
        self.length += 1
        self.entries_added += 1
        self.last_id = sid
        if self.length == 1:
            self.first_id = sid

    # ---------------------------------------------------------------- lookups

    def _locate(self, sid: int):
        """(node index, position) of ``sid`` if stored (live or tombstone), else None."""
        n = bisect_right(self.firsts, sid) - 1
        if n < 0:
            return None
        ids = self.nodes[n].ids
        i = bisect_left(ids, sid)
        if i < len(ids) and ids[i] == sid:
            return n, i
        return None

    def get(self, sid: int):
        """The field/value tuple of live entry ``sid``, or None."""
        where = self._locate(sid)
        if where is None:
            return None
        return self.nodes[where[0]].values[where[1]]

    def exists(self, sid: int) -> bool:
        return self.get(sid) is not None

    def last_valid_id(self) -> int:
        """The ID of the last live entry (0 when empty): streamLastValidID."""
        for node in reversed(self.nodes):
            if node.live:
                values = node.values
                for i in range(len(values) - 1, -1, -1):
                    if values[i] is not None:
                        return node.ids[i]
        return 0

    def first_valid_id(self) -> int | None:
        for node in self.nodes:
            if node.live:
                for i, value in enumerate(node.values):
                    if value is not None:
                        return node.ids[i]
        return None

    def range(self, start: int, end: int, count: int = 0, rev: bool = False):
        """Live entries with ``start <= id <= end`` as ``(id, fv)``, at most ``count`` (0 = all)."""
        if start > end:
            return
        nodes = self.nodes
        emitted = 0
        if not rev:
            n = max(bisect_right(self.firsts, start) - 1, 0)
            for k in range(n, len(nodes)):
                node = nodes[k]
                if node.master > end:
                    return
                ids = node.ids
                values = node.values
                i = bisect_left(ids, start) if k == n else 0
                stop = len(ids)
                while i < stop:
                    sid = ids[i]
                    if sid > end:
                        return
                    fv = values[i]
                    if fv is not None:
                        yield sid, fv
                        emitted += 1
                        if emitted == count:
                            return
                    i += 1
        else:
            n = bisect_right(self.firsts, end) - 1
            for k in range(n, -1, -1):
                node = nodes[k]
                ids = node.ids
                values = node.values
                i = bisect_right(ids, end) - 1 if k == n else len(ids) - 1
                while i >= 0:
                    sid = ids[i]
                    if sid < start:
                        return
                    fv = values[i]
                    if fv is not None:
                        yield sid, fv
                        emitted += 1
                        if emitted == count:
                            return
                    i -= 1

    # --------------------------------------------------------------- deleting

    def delete(self, sid: int) -> bool:
        """XDEL of one ID: True if a live entry was removed.

        Also keeps ``first_id``/``max_deleted`` up to date as XDEL does.
        """
        where = self._locate(sid)
        if where is None:
            return False
        n, i = where
        node = self.nodes[n]
        if node.values[i] is None:
            return False
        if node.live == 1:
            # The last live entry of its listpack: the whole node goes.
            del self.nodes[n]
            del self.firsts[n]
        else:
            node.values[i] = None
            node.set_counters(node.live - 1, node.dead + 1)
        self.length -= 1
        if sid > self.max_deleted:
            self.max_deleted = sid
        return True

    def after_delete(self, first_deleted: bool) -> None:
        """XDEL's update of the recorded first ID once all its IDs are deleted."""
        if self.length == 0:
            self.first_id = 0
        elif first_deleted:
            self.first_id = self.first_valid_id()

    def trim(self, maxlen: int | None, minid: int | None, approx: bool, limit: int) -> int:
        """Redis's streamTrim: MAXLEN (``maxlen``) or MINID (``minid``); returns entries removed.

        With ``approx`` only whole nodes go; ``limit`` (0 = none) caps the
        entries removed, counted in whole nodes.
        """
        deleted = 0
        nodes = self.nodes
        while nodes:
            if maxlen is not None and self.length <= maxlen:
                break
            node = nodes[0]
            entries = node.live
            if limit and deleted + entries > limit:
                break
            if maxlen is not None:
                remove = self.length - entries >= maxlen
            else:
                remove = node.ids[-1] < minid
            if remove:
                del nodes[0]
                del self.firsts[0]
                self.length -= entries
                deleted += entries
                continue
            if approx:
                break
            # Mark entries of this node deleted from its start.
            removed_here = 0
            values = node.values
            ids = node.ids
            for i in range(len(ids)):
                if maxlen is not None:
                    if self.length <= maxlen:
                        break
                elif ids[i] >= minid:
                    break
                if values[i] is not None:
                    values[i] = None
                    removed_here += 1
                    self.length -= 1
            deleted += removed_here
            node.set_counters(entries - removed_here, node.dead + removed_here)
            break
        if self.length == 0:
            self.first_id = 0
        elif deleted:
            self.first_id = self.first_valid_id()
        return deleted

    # -------------------------------------------------------- groups, metadata

    def group(self, name: bytes) -> Group | None:
        groups = self.groups
        return groups.get(name) if groups is not None else None

    def create_group(self, name: bytes, last_id: int, entries_read: int) -> Group | None:
        if self.groups is None:
            self.groups = {}
        if name in self.groups:
            return None
        group = self.groups[name] = Group(last_id, entries_read)
        return group

    def sorted_groups(self) -> list[tuple[bytes, Group]]:
        if not self.groups:
            return []
        return [(name, self.groups[name]) for name in sorted(self.groups)]

    def range_has_tombstones(self, start: int, end: int = ID_MAX) -> bool:
        """Whether deleted entries may lie in ``[start, end]`` (streamRangeHasTombstones)."""
        mdel = self.max_deleted
        if not self.length or not mdel:
            return False
        if self.first_id > mdel:
            return False
        return start <= mdel <= end

    def estimate_distance(self, sid: int) -> int:
        """The entries-read counter for ``sid`` if it can be known, else -1.

        Redis's streamEstimateDistanceFromFirstEverEntry.
        """
        added = self.entries_added
        if not added:
            return 0
        if not self.length and sid <= self.last_id:
            return added
        if sid == self.last_id:
            return added
        if sid > self.last_id:
            return INVALID_ENTRIES_READ
        if not self.max_deleted or self.max_deleted < self.first_id:
            if sid < self.first_id:
                return added - self.length
            if sid == self.first_id:
                return added - self.length + 1
        return INVALID_ENTRIES_READ

    def lag(self, group: Group) -> int | None:
        """The group's lag as XINFO reports it, None when it cannot be computed."""
        if not self.entries_added:
            return 0
        if group.entries_read != INVALID_ENTRIES_READ and not self.range_has_tombstones(group.last_id):
            return self.entries_added - group.entries_read
        read = self.estimate_distance(group.last_id)
        if read != INVALID_ENTRIES_READ:
            return self.entries_added - read
        return None

    def advance_group(self, group: Group, sid: int) -> None:
        """A group delivers ``sid`` > its last ID: move the ID and the read counter."""
        if group.entries_read != INVALID_ENTRIES_READ and not self.range_has_tombstones(sid):
            group.entries_read += 1
        elif self.entries_added:
            group.entries_read = self.estimate_distance(sid)
        group.last_id = sid

    # --------------------------------------------------------------- the rax

    def rax_keys(self) -> int:
        return len(self.nodes)

    def rax_nodes(self) -> int:
        """How many nodes Redis's radix tree of listpacks has (XINFO radix-tree-nodes).

        The keys are the nodes' master IDs as 16 big-endian bytes; the rax
        is a compressed trie: a node per branching point and per leaf, plus
        one per run of non-branching bytes (a compressed node) between them.
        """
        if not self.firsts:
            return 1
        keys = [sid.to_bytes(16, "big") for sid in self.firsts]
        return _rax_chain(keys, 0, len(keys), 0)

    # ------------------------------------------------------------------ COPY

    def copy(self) -> "Stream":
        twin = Stream()
        twin.nodes = [node.copy() for node in self.nodes]
        twin.firsts = self.firsts[:]
        twin.length = self.length
        twin.last_id = self.last_id
        twin.first_id = self.first_id
        twin.max_deleted = self.max_deleted
        twin.entries_added = self.entries_added
        if self.groups is not None:
            twin.groups = {name: group.copy() for name, group in self.groups.items()}
        return twin


def _rax_chain(keys: list[bytes], lo: int, hi: int, depth: int) -> int:
    """Rax nodes for the sorted ``keys[lo:hi]`` below a node at byte ``depth``."""
    if depth == 16:
        return 1  # the leaf holding the key
    if hi - lo == 1:
        return 2  # one compressed node with the rest of the key, then the leaf
    first, last = keys[lo], keys[hi - 1]
    p = depth
    while first[p] == last[p]:
        p += 1
    return (1 if p > depth else 0) + _rax_branch(keys, lo, hi, p)


def _rax_branch(keys: list[bytes], lo: int, hi: int, depth: int) -> int:
    total = 1
    i = lo
    while i < hi:
        byte = keys[i][depth]
        j = i + 1
        while j < hi and keys[j][depth] == byte:
            j += 1
        total += _rax_chain(keys, i, j, depth + 1)
        i = j
    return total
