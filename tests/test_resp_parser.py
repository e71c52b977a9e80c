"""Unit tests of the sans-IO request parser, each run with both engines.

Every expectation here is what Redis 7.0's ``processInlineBuffer`` /
``processMultibulkBuffer`` do with the same bytes (``test_protocol_vs_redis``
checks the same streams against a real redis-server). The hypothesis
properties require the hiredis fast path and the pure engine to agree on any
byte stream, however it is chunked.
"""

from __future__ import annotations

import random
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.resp.parser import HAVE_HIREDIS, INLINE_MAX_SIZE, NEED_DATA, ProtocolError, RequestParser
from tests.byte_streams import mutate
from tests.resp_client import encode_command

ENGINES = [
    pytest.param(True, id="hiredis", marks=pytest.mark.skipif(not HAVE_HIREDIS, reason="hiredis not installed")),
    pytest.param(False, id="pure"),
]


def drain(parser: RequestParser, out: list) -> str | None:
    """Append every complete command to ``out``; the error text if the stream broke."""
    try:
        while (command := parser.next_command()) is not NEED_DATA:
            assert type(command) is list and command, command
            assert all(type(arg) is bytes for arg in command), command
            out.append(command)
    except ProtocolError as exc:
        return exc.message
    return None


def run(data: bytes, use_hiredis: bool, chunks: list[int] | None = None, **options):
    """Feed ``data`` (whole, or cut at ``chunks`` sizes); (commands, error or NEED_DATA, pending)."""
    parser = RequestParser(use_hiredis=use_hiredis, **options)
    commands: list[list[bytes]] = []
    pieces = [data] if chunks is None else _cut(data, chunks)
    for piece in pieces:
        parser.feed(piece)
        error = drain(parser, commands)
        if error is not None:
            return commands, error, None
    return commands, NEED_DATA, parser.pending_bytes()


def _cut(data: bytes, sizes: list[int]) -> list[bytes]:
    pieces, pos, i = [], 0, 0
    while pos < len(data):
        size = max(1, sizes[i % len(sizes)]) if sizes else len(data)
        pieces.append(data[pos : pos + size])
        pos += size
        i += 1
    return pieces


def bytewise(data: bytes, use_hiredis: bool, **options):
    return run(data, use_hiredis, [1], **options)


def cmd(*args) -> bytes:
    return encode_command(*args)


# ---------------------------------------------------------------- multibulk


@pytest.mark.parametrize("use_hiredis", ENGINES)
class TestMultibulk:
    def test_single_command(self, use_hiredis):
        assert run(cmd("SET", "k", "v"), use_hiredis) == ([[b"SET", b"k", b"v"]], NEED_DATA, 0)

    def test_binary_payloads(self, use_hiredis):
        value = bytes(range(256)) + b"\r\n\0*1\r\n$3\r\n"
        data = cmd("SET", b"k\0\r\n", value) + cmd("GET", b"")
        assert run(data, use_hiredis) == ([[b"SET", b"k\0\r\n", value], [b"GET", b""]], NEED_DATA, 0)

    def test_pipeline(self, use_hiredis):
        commands = [[b"SET", b"key:%d" % i, b"v" * i] for i in range(50)]
        data = b"".join(cmd(*c) for c in commands)
        assert run(data, use_hiredis) == (commands, NEED_DATA, 0)

    def test_empty_and_negative_counts_are_ignored(self, use_hiredis):
        data = b"*0\r\n*-1\r\n*-5\r\n" + cmd("PING") + b"*-9223372036854775808\r\n*0\r\n" + cmd("ECHO", "x")
        assert run(data, use_hiredis) == ([[b"PING"], [b"ECHO", b"x"]], NEED_DATA, 0)

    def test_bulk_trailer_is_skipped_unread(self, use_hiredis):
        # Redis never looks at the two bytes after a bulk.
        data = b"*2\r\n$4\r\nECHOxx$2\r\nhi\0\0" + cmd("PING")
        assert run(data, use_hiredis) == ([[b"ECHO", b"hi"], [b"PING"]], NEED_DATA, 0)

    def test_header_line_ends_at_cr_whatever_follows(self, use_hiredis):
        # Redis finds the first CR and skips two bytes: the LF is not checked.
        data = b"*2\rx$4\r?ECHO\r\n$2\r\rhi\r\n"
        assert run(data, use_hiredis) == ([[b"ECHO", b"hi"]], NEED_DATA, 0)

    def test_big_value_across_feeds(self, use_hiredis):
        value = random.Random(1).randbytes(3 * 1024 * 1024 + 7)
        data = cmd("SET", "big", value) + cmd("GET", "big")
        rng = random.Random(2)
        sizes = [rng.randint(1, 200_000) for _ in range(100)]
        assert run(data, use_hiredis, sizes) == ([[b"SET", b"big", value], [b"GET", b"big"]], NEED_DATA, 0)

    def test_partial_command_waits(self, use_hiredis):
        # Like Redis's query buffer, pending bytes exclude headers and whole
        # arguments already parsed: "*3\r\n$3\r\nSET\r\n$3\r\nke" leaves "ke".
        data = cmd("SET", "key", "value")
        pending = [1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 4, 0, 1, 2, 3, 0, 1, 2, 3, 4, 0, 1, 2, 3, 0, 1, 2, 3, 4, 5, 6]
        for cut in range(1, len(data)):
            assert run(data[:cut], use_hiredis) == ([], NEED_DATA, pending[cut - 1]), cut

    def test_pending_bytes_counts_only_unreturned_bytes(self, use_hiredis):
        parser = RequestParser(use_hiredis=use_hiredis)
        first, second = cmd("SET", "a", "1"), cmd("SET", "b", "2")
        parser.feed(first + second[:9])
        assert parser.next_command() == [b"SET", b"a", b"1"]
        assert parser.next_command() is NEED_DATA
        assert parser.pending_bytes() == 1  # "S": the headers before it are parsed
        parser.feed(second[9:])
        assert parser.next_command() == [b"SET", b"b", b"2"]
        assert parser.next_command() is NEED_DATA
        assert parser.pending_bytes() == 0

    def test_pending_bytes_inside_an_array(self, use_hiredis):
        # The array header and first item are complete, the command is not.
        parser = RequestParser(use_hiredis=use_hiredis)
        parser.feed(b"*3\r\n$4\r\nECHO\r\n")
        assert parser.next_command() is NEED_DATA
        assert parser.pending_bytes() == 0
        parser.feed(b"$2\r\nh")
        assert parser.next_command() is NEED_DATA
        assert parser.pending_bytes() == 1
        parser.feed(b"i\r\n+hi\r\n")  # not a bulk: Redis rejects it, even though hiredis reads it
        with pytest.raises(ProtocolError) as info:
            parser.next_command()
        assert info.value.message == "Protocol error: expected '$', got '+'"

    def test_pending_bytes_when_caller_stops_early(self, use_hiredis):
        parser = RequestParser(use_hiredis=use_hiredis)
        data = cmd("GET", "a") + cmd("GET", "bb") + cmd("GET", "c")
        parser.feed(data)
        assert parser.next_command() == [b"GET", b"a"]
        assert parser.pending_bytes() == len(data) - len(cmd("GET", "a"))

    def test_huge_declared_bulk_rejected_at_header(self, use_hiredis):
        assert run(b"*1\r\n$600000000\r\n", use_hiredis) == ([], "Protocol error: invalid bulk length", None)
        assert run(b"*1\r\n$536870912\r\n", use_hiredis) == ([], NEED_DATA, 0)  # 512 MB: allowed

    def test_max_bulk_len_option(self, use_hiredis):
        ok = cmd("ECHO", b"x" * 10)
        assert run(ok, use_hiredis, max_bulk_len=10) == ([[b"ECHO", b"x" * 10]], NEED_DATA, 0)
        # A complete command over the limit fails too, after the commands before it.
        data = cmd("PING") + cmd("ECHO", b"x" * 11)
        assert run(data, use_hiredis, max_bulk_len=10) == ([[b"PING"]], "Protocol error: invalid bulk length", None)

    def test_count_limits(self, use_hiredis):
        assert run(b"*2147483647\r\n", use_hiredis) == ([], NEED_DATA, 0)
        for count in (b"2147483648", b"9223372036854775807", b"9223372036854775808", b"1" * 21):
            assert run(b"*%b\r\n" % count, use_hiredis)[1] == "Protocol error: invalid multibulk length"

    @pytest.mark.parametrize(
        "header",
        [b"*+1", b"*01", b"*00", b"*-0", b"*", b"* 1", b"*1 ", b"*1a", b"*0x1", b"*\xff", b"*1.0", b"*--1"],
    )
    def test_invalid_multibulk_length(self, use_hiredis, header):
        assert run(header + b"\r\n$4\r\nPING\r\n", use_hiredis) == (
            [],
            "Protocol error: invalid multibulk length",
            None,
        )

    @pytest.mark.parametrize(
        "header", [b"$+4", b"$04", b"$-1", b"$-0", b"$", b"$ 4", b"$4 ", b"$4a", b"$-9223372036854775809"]
    )
    def test_invalid_bulk_length(self, use_hiredis, header):
        assert run(cmd("PING") + b"*1\r\n" + header + b"\r\nPING\r\n", use_hiredis) == (
            [[b"PING"]],
            "Protocol error: invalid bulk length",
            None,
        )

    @pytest.mark.parametrize(
        "item, got",
        [
            (b"+PING\r\n", "+"),
            (b":1\r\n", ":"),
            (b"(1\r\n", "("),
            (b"=8\r\ntxt:PING\r\n", "="),
            (b",1.5\r\n", ","),
            (b"#t\r\n", "#"),
            (b"_\r\n", "_"),
            (b"*1\r\n$4\r\nPING\r\n", "*"),
            (b"~1\r\n$4\r\nPING\r\n", "~"),
            (b"%1\r\n$1\r\na\r\n$1\r\nb\r\n", "%"),
            (b"|1\r\n$1\r\na\r\n$1\r\nb\r\n", "|"),
            (b">1\r\n$4\r\nPING\r\n", ">"),
            (b"-ERR x\r\n", "-"),
            (b"x\r\n", "x"),
            (b"\xe9\r\n", "\udce9"),  # the raw byte: the encoder writes it back unchanged
            (b"\r\n", "\r"),  # the reply encoder turns the CR into a space, as Redis does
        ],
    )
    def test_expected_dollar(self, use_hiredis, item, got):
        for data in (b"*2\r\n$4\r\nECHO\r\n" + item, b"*2\r\n$4\r\nECHOxx" + item, b"*1\r\n" + item):
            assert run(data, use_hiredis) == ([], f"Protocol error: expected '$', got '{got}'", None), data

    def test_too_big_mbulk_count_string(self, use_hiredis):
        data = b"*" + b"1" * (INLINE_MAX_SIZE - 1)
        assert run(data, use_hiredis) == ([], NEED_DATA, len(data))
        assert run(data + b"1", use_hiredis) == ([], "Protocol error: too big mbulk count string", None)
        # A terminated header line that long fails the same way, however it arrived.
        assert run(data + b"1\r\n", use_hiredis)[1] == "Protocol error: too big mbulk count string"

    def test_too_big_bulk_count_string(self, use_hiredis):
        data = b"*1\r\n$" + b"1" * (INLINE_MAX_SIZE - 1)
        assert run(data, use_hiredis) == ([], NEED_DATA, len(data) - 4)
        assert run(data + b"1", use_hiredis) == ([], "Protocol error: too big bulk count string", None)
        assert run(data + b"1\r\n", use_hiredis)[1] == "Protocol error: too big bulk count string"

    def test_nul_in_header_hides_the_cr(self, use_hiredis):
        # strchr(querybuf, '\r') stops at a NUL: the line never ends.
        assert run(b"*1\0\r\n$4\r\nPING\r\n", use_hiredis) == ([], NEED_DATA, 15)
        for data in (b"*1\r\n$4\0\r\nPING\r\n", b"*1\r\n\0$4\r\nPING\r\n"):
            assert run(data, use_hiredis) == ([], NEED_DATA, len(data) - 4)
        grown = b"*1\r\n$4\0\r\n" + b"PING\r\n" * 11000
        expected = ([], "Protocol error: too big bulk count string", None)
        assert run(grown, use_hiredis) == expected
        grown = b"*1\0\r\n" + b"x" * INLINE_MAX_SIZE
        assert run(grown, use_hiredis) == ([], "Protocol error: too big mbulk count string", None)

    def test_nul_after_the_cr_is_harmless(self, use_hiredis):
        data = b"*1\r\n$4\r\n\0\0\0\0\r\n*1\r\n$1\r\n\0\r\n"
        assert run(data, use_hiredis) == ([[b"\0\0\0\0"], [b"\0"]], NEED_DATA, 0)

    def test_unauthenticated_limits(self, use_hiredis):
        def run_unauth(data):
            parser = RequestParser(use_hiredis=use_hiredis)
            parser.unauthenticated = True
            parser.feed(data)
            commands: list = []
            return commands, drain(parser, commands)

        assert run_unauth(b"*10\r\n")[1] is None
        assert run_unauth(b"*11\r\n") == ([], "Protocol error: unauthenticated multibulk length")
        assert run_unauth(b"*1\r\n$16384\r\n")[1] is None
        assert run_unauth(cmd("AUTH", "pw") + b"*2\r\n$4\r\nAUTH\r\n$16385\r\n") == (
            [[b"AUTH", b"pw"]],
            "Protocol error: unauthenticated bulk length",
        )
        # Invalid lengths are reported as such first, as Redis checks them first.
        assert run_unauth(b"*2147483648\r\n")[1] == "Protocol error: invalid multibulk length"
        # Once authenticated, the limits go away.
        parser = RequestParser(use_hiredis=use_hiredis)
        parser.unauthenticated = True
        parser.feed(cmd("AUTH", "pw"))
        assert parser.next_command() == [b"AUTH", b"pw"]
        parser.unauthenticated = False
        parser.feed(cmd(*["x"] * 20))
        assert parser.next_command() == [b"x"] * 20

    def test_error_is_sticky(self, use_hiredis):
        parser = RequestParser(use_hiredis=use_hiredis)
        parser.feed(b"*1\r\nx\r\n")
        for _ in range(2):
            with pytest.raises(ProtocolError, match="expected"):
                parser.next_command()
        parser.feed(cmd("PING"))
        with pytest.raises(ProtocolError):
            parser.next_command()


# ------------------------------------------------------------------- inline


@pytest.mark.parametrize("use_hiredis", ENGINES)
class TestInline:
    @pytest.mark.parametrize(
        "line, args",
        [
            (b"PING", [b"PING"]),
            (b"SET k v", [b"SET", b"k", b"v"]),
            (b"  SET   k\tv  ", [b"SET", b"k", b"v"]),
            (b'SET k "a b"', [b"SET", b"k", b"a b"]),
            (b'SET k ""', [b"SET", b"k", b""]),
            (b'ECHO "\\x41\\x4a\\x4A\\xzz\\x4"', [b"ECHO", b"AJJxzzx4"]),
            (b'ECHO "\\n\\r\\t\\b\\a\\\\\\"\\q"', [b"ECHO", b'\n\r\t\b\x07\\"q']),
            (b"ECHO 'a\\'b'", [b"ECHO", b"a'b"]),
            (b"ECHO 'a\\nb \"c\"'", [b"ECHO", b'a\\nb "c"']),
            (b"ECHO a\"b c\"d", None),  # a closing quote must be followed by a space
            (b'ECHO a"b c" d', [b"ECHO", b"ab c", b"d"]),
            (b"ECHO 'x'y", None),
            (b'ECHO "abc', None),
            (b"ECHO 'abc", None),
            (b'ECHO "abc\\"', None),
            (b'ECHO "abc\\', None),
            (b"ECHO a\rb", [b"ECHO", b"a", b"b"]),  # a lone CR ends a word
            (b"ECHO a\x0bb\x0c", [b"ECHO", b"a\x0bb\x0c"]),  # \v and \f do not
            (b"\x0b\x0cECHO x", [b"ECHO", b"x"]),  # but are skipped between words
            (b"ECHO \xff\xfe", [b"ECHO", b"\xff\xfe"]),
            (b'ECHO "\xff"', [b"ECHO", b"\xff"]),
            (b"$4", [b"$4"]),
            (b"+PING", [b"+PING"]),
            (b"~1", [b"~1"]),
            (b"|1", [b"|1"]),
        ],
    )
    def test_split(self, use_hiredis, line, args):
        for ending in (b"\r\n", b"\n"):
            result = run(line + ending, use_hiredis)
            if args is None:
                assert result == ([], "Protocol error: unbalanced quotes in request", None)
            else:
                assert result == ([args], NEED_DATA, 0)

    def test_empty_lines_are_ignored(self, use_hiredis):
        data = b"\r\n\n   \r\n\t\n" + b"PING\n" + b"\r\n" + b"ECHO x\r\n"
        assert run(data, use_hiredis) == ([[b"PING"], [b"ECHO", b"x"]], NEED_DATA, 0)

    def test_cr_only_at_the_end_is_stripped(self, use_hiredis):
        assert run(b"ECHO a\r\r\n", use_hiredis) == ([[b"ECHO", b"a"]], NEED_DATA, 0)
        assert run(b"ECHO 'a\r'\r\n", use_hiredis) == ([[b"ECHO", b"a\r"]], NEED_DATA, 0)

    def test_partial_line_waits(self, use_hiredis):
        assert run(b"SET k v\r", use_hiredis) == ([], NEED_DATA, 8)
        assert run(b"SET k v", use_hiredis) == ([], NEED_DATA, 7)

    def test_nul_hides_the_newline(self, use_hiredis):
        # strchr(querybuf, '\n') stops at the NUL: Redis waits for more data.
        assert run(b"PING\0\r\nPING\r\n", use_hiredis) == ([], NEED_DATA, 13)
        assert run(b"PING\r\nECHO \"a\0b\"\r\n", use_hiredis) == ([[b"PING"]], NEED_DATA, 12)
        data = b"PING\0\r\n" + b"PING\r\n" * 11000
        assert run(data, use_hiredis) == ([], "Protocol error: too big inline request", None)

    def test_too_big_inline_request(self, use_hiredis):
        # Redis fails once more than 64 KB are buffered without a newline.
        line = b"ECHO " + b"a" * (INLINE_MAX_SIZE - 6)
        assert run(line + b"\r\n", use_hiredis) == ([[b"ECHO", b"a" * (INLINE_MAX_SIZE - 6)]], NEED_DATA, 0)
        assert run(line + b"a\n", use_hiredis) == ([[b"ECHO", b"a" * (INLINE_MAX_SIZE - 5)]], NEED_DATA, 0)
        assert run(line + b"a", use_hiredis) == ([], NEED_DATA, INLINE_MAX_SIZE)
        assert run(line + b"aa", use_hiredis) == ([], "Protocol error: too big inline request", None)
        # However the bytes arrive, a longer line is an error (see the parser docstring).
        assert run(line + b"a\r\n", use_hiredis) == ([], "Protocol error: too big inline request", None)
        assert run(cmd("PING") + line + b"aaa\n", use_hiredis, [70000]) == (
            [[b"PING"]],
            "Protocol error: too big inline request",
            None,
        )

    def test_inline_pipeline_takes_linear_time(self, use_hiredis):
        data = b"PING\r\n" * 20000
        start = time.perf_counter()
        commands, state, _ = run(data, use_hiredis, [65536])
        assert (len(commands), state) == (20000, NEED_DATA)
        assert time.perf_counter() - start < 2.0


# ------------------------------------------------------------ mixed streams


@pytest.mark.parametrize("use_hiredis", ENGINES)
class TestMixed:
    STREAM = (
        b"PING\r\n"
        + cmd("SET", "k", "a b")
        + b'SET k2 "x y"\n'
        + b"*0\r\n"
        + cmd("GET", "k")
        + b"\r\n"
        + cmd("ECHO", b"+OK\r\n")
        + b"ECHO 'single'\r\n"
        + cmd("ECHO", b"(1\r\n=3\r\n~1\r\n|")
        + b"*-1\r\n"
        + cmd("PING")
    )
    EXPECTED = [
        [b"PING"],
        [b"SET", b"k", b"a b"],
        [b"SET", b"k2", b"x y"],
        [b"GET", b"k"],
        [b"ECHO", b"+OK\r\n"],
        [b"ECHO", b"single"],
        [b"ECHO", b"(1\r\n=3\r\n~1\r\n|"],
        [b"PING"],
    ]

    def test_whole(self, use_hiredis):
        assert run(self.STREAM, use_hiredis) == (self.EXPECTED, NEED_DATA, 0)

    def test_every_split_point(self, use_hiredis):
        for cut in range(1, len(self.STREAM)):
            parser = RequestParser(use_hiredis=use_hiredis)
            commands: list = []
            parser.feed(self.STREAM[:cut])
            assert drain(parser, commands) is None
            parser.feed(self.STREAM[cut:])
            assert drain(parser, commands) is None
            assert commands == self.EXPECTED, cut
            assert parser.pending_bytes() == 0

    def test_byte_by_byte(self, use_hiredis):
        assert bytewise(self.STREAM, use_hiredis) == (self.EXPECTED, NEED_DATA, 0)

    def test_random_chunks(self, use_hiredis):
        rng = random.Random(7)
        for _ in range(50):
            sizes = [rng.randint(1, 40) for _ in range(30)]
            assert run(self.STREAM, use_hiredis, sizes) == (self.EXPECTED, NEED_DATA, 0)

    def test_error_after_commands(self, use_hiredis):
        data = self.STREAM + b'ECHO "x\r\n' + cmd("PING")
        assert run(data, use_hiredis) == (self.EXPECTED, "Protocol error: unbalanced quotes in request", None)
        assert bytewise(data, use_hiredis) == (
            self.EXPECTED,
            "Protocol error: unbalanced quotes in request",
            None,
        )


# ----------------------------------------------------------- fast-path traps


@pytest.mark.skipif(not HAVE_HIREDIS, reason="hiredis not installed")
class TestHiredisTraps:
    """Streams hiredis reads differently from Redis: the fast path must defer."""

    @pytest.mark.parametrize(
        "data",
        [
            b"~2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n",  # a set at top level is a list to hiredis
            b"|1\r\n$4\r\nECHO\r\n$2\r\nhi\r\n",  # so is an attribute
            b">2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n",
            b"*2\r\n$4\r\nECHO\r\n+hi\r\n",  # status, verbatim and big number items are bytes to hiredis
            b"*2\r\n$4\r\nECHOxx+hi\r\n",  # ... even after a bulk whose trailer is not CRLF
            b"*2\r\n$4\r\nECHOxx=6\r\ntxt:hi\r\n",
            b"*2\r\n$4\r\nECHO\r\n(12\r\n",
            b"*2\r\n$4\r\nECHOab(12\r\n",
            b"*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n*1\r\n$4\r\nPINGab+OK\r\n",
        ],
    )
    def test_same_as_pure(self, data):
        expected = run(data, False)
        assert run(data, True) == expected
        assert bytewise(data, True) == expected

    def test_partial_array_then_more_commands(self):
        parser = RequestParser()
        parser.feed(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n")
        assert parser.next_command() is NEED_DATA
        assert parser.pending_bytes() == 0
        parser.feed(b"$1\r\nv\r\n" + cmd("GET", "k"))
        assert parser.next_command() == [b"SET", b"k", b"v"]
        assert parser.next_command() == [b"GET", b"k"]
        assert parser.next_command() is NEED_DATA
        assert parser.pending_bytes() == 0

    @pytest.mark.parametrize(
        "header",
        [b"*2147483647\r\n", b"*4294967295\r\n", b"*1\r\n*2147483647\r\n", b"~2147483647\r\n",
         b">2147483647\r\n", b"|2147483647\r\n", b"*2\r\n$1\r\naxy*2147483647\r\n"],
    )
    def test_huge_array_header_costs_nothing(self, header):
        # hiredis allocates an array's slots at its header; freeing 2**31 of them
        # stalls the whole server for seconds. Such headers never reach hiredis.
        start = time.perf_counter()
        for prefix in (b"", cmd("PING"), b"PING\r\n"):
            parser = RequestParser()
            parser.feed(prefix + header)
            drain(parser, [])
            parser.feed(cmd("PING"))
            drain(parser, [])
            del parser
        assert time.perf_counter() - start < 0.5

    def test_reader_failure_falls_back_to_pure(self):
        class Exploding:
            def feed(self, data):
                pass

            def has_data(self):
                return True

            def gets(self):
                raise MemoryError  # what a huge array header can cause in hiredis

        parser = RequestParser()
        parser._reader = Exploding()
        parser.feed(cmd("PING") + b"*2147483647\r\n")
        assert parser.next_command() == [b"PING"]
        assert parser.next_command() is NEED_DATA
        assert parser._argc_left == 2147483647  # the pure engine took over, without a huge list


# -------------------------------------------------------------- properties

_ITEMS = [
    b"\r\n", b"\n", b"\r", b"\0", b"*", b"$", b"+", b"-", b":", b"(", b"=", b"~", b"|", b">", b"%", b"#",
    b",", b"_", b"!", b"*0\r\n", b"*-1\r\n", b"*1\r\n", b"*2\r\n", b"*3\r\n", b"$0\r\n", b"$1\r\n",
    b"$3\r\n", b"$-1\r\n", b"$01\r\n", b"*+1\r\n", b"+OK\r\n", b"(12\r\n", b"=6\r\ntxt:ab\r\n",
    b"~1\r\n", b"|1\r\n", b">1\r\n", b"%1\r\n", b'"', b"'", b"\\", b"\\x41", b" ", b"\t", b"PING",
    b"ECHO", b"SET", b"GET", b"*2147483648\r\n", b"$600000000\r\n", b"\xff",
]

_arg = st.binary(max_size=12) | st.sampled_from([b"", b"+", b"\r\n", b"*1\r\n", b"$", b"\0", b"(1", b"= ~|"])


@st.composite
def valid_command(draw) -> bytes:
    args = draw(st.lists(_arg, min_size=1, max_size=4))
    if draw(st.booleans()):
        return cmd(*args)
    words = draw(st.lists(st.from_regex(rb"[A-Za-z0-9+=(~|$*:-]{1,8}", fullmatch=True), min_size=1, max_size=3))
    quoted = draw(st.sampled_from([b"", b' "a b\\x41\\n"', b" 'c d'", b' ""']))
    return b" ".join(words) + quoted + draw(st.sampled_from([b"\r\n", b"\n"]))


@st.composite
def mutated_pipeline(draw) -> bytes:
    parts = draw(st.lists(valid_command() | st.sampled_from(_ITEMS), min_size=1, max_size=12))
    data = bytearray(b"".join(parts))
    return mutate(draw, data, _ITEMS, rounds=4, insert_max=4, delete_max=6)


streams = st.binary(max_size=200) | mutated_pipeline()
chunkings = st.lists(st.integers(1, 64), min_size=1, max_size=20)


@pytest.mark.skipif(not HAVE_HIREDIS, reason="hiredis not installed")
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=streams, sizes=chunkings)
def test_engines_agree_on_any_stream(data, sizes):
    """hiredis and pure engines yield the same commands and final state, however chunked."""
    expected = run(data, False)
    assert run(data, True) == expected
    assert run(data, True, sizes) == expected
    assert run(data, False, sizes) == expected


@pytest.mark.skipif(not HAVE_HIREDIS, reason="hiredis not installed")
@settings(max_examples=300, deadline=None)
@given(data=streams, sizes=chunkings)
def test_engines_agree_when_unauthenticated(data, sizes):
    def run_unauth(use_hiredis, chunk_sizes):
        parser = RequestParser(use_hiredis=use_hiredis)
        parser.unauthenticated = True
        commands: list = []
        for piece in _cut(data, chunk_sizes) if chunk_sizes else [data]:
            parser.feed(piece)
            error = drain(parser, commands)
            if error is not None:
                return commands, error
        return commands, parser.pending_bytes()

    expected = run_unauth(False, None)
    assert run_unauth(True, None) == expected
    assert run_unauth(True, sizes) == expected


@settings(max_examples=300, deadline=None)
@given(commands=st.lists(st.lists(st.binary(max_size=20), min_size=1, max_size=5), min_size=1, max_size=10))
def test_canonical_encoding_round_trips(commands):
    data = b"".join(cmd(*c) for c in commands)
    for use_hiredis in (True, False) if HAVE_HIREDIS else (False,):
        assert run(data, use_hiredis) == (commands, NEED_DATA, 0)
        assert bytewise(data, use_hiredis) == (commands, NEED_DATA, 0)
