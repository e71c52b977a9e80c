"""Reply values to RESP2/RESP3 bytes: every type, exact bytes, and a hiredis round trip.

The expected bytes are what Redis 7.0's ``addReply*`` functions write for the
same reply (``addReplyDouble`` uses ``%.17g``; ``addReplyNull`` is ``$-1`` in
RESP2; maps flatten to arrays in RESP2; errors stay on one line).
"""

from __future__ import annotations

import math

import hiredis
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.resp import (
    NO_REPLY,
    NULL_ARRAY,
    OK,
    PONG,
    QUEUED,
    BigNumber,
    Double,
    ErrorReply,
    Push,
    Raw,
    SetReply,
    SimpleString,
    Verbatim,
    encode,
    format_double,
    write_reply,
)

CASES = [
    # value, RESP2 bytes, RESP3 bytes
    (b"hello", b"$5\r\nhello\r\n", b"$5\r\nhello\r\n"),
    (b"", b"$0\r\n\r\n", b"$0\r\n\r\n"),
    (b"a\r\nb\0", b"$5\r\na\r\nb\0\r\n", b"$5\r\na\r\nb\0\r\n"),
    (bytearray(b"xyz"), b"$3\r\nxyz\r\n", b"$3\r\nxyz\r\n"),
    (memoryview(b"mv"), b"$2\r\nmv\r\n", b"$2\r\nmv\r\n"),
    ("caf\u00e9", b"$5\r\ncaf\xc3\xa9\r\n", b"$5\r\ncaf\xc3\xa9\r\n"),
    (0, b":0\r\n", b":0\r\n"),
    (-42, b":-42\r\n", b":-42\r\n"),
    (2**63 - 1, b":9223372036854775807\r\n", b":9223372036854775807\r\n"),
    (-(2**63), b":-9223372036854775808\r\n", b":-9223372036854775808\r\n"),
    (True, b":1\r\n", b"#t\r\n"),
    (False, b":0\r\n", b"#f\r\n"),
    (None, b"$-1\r\n", b"_\r\n"),
    (NULL_ARRAY, b"*-1\r\n", b"_\r\n"),
    ([], b"*0\r\n", b"*0\r\n"),
    ([b"a", 1, None], b"*3\r\n$1\r\na\r\n:1\r\n$-1\r\n", b"*3\r\n$1\r\na\r\n:1\r\n_\r\n"),
    ((b"t", 2), b"*2\r\n$1\r\nt\r\n:2\r\n", b"*2\r\n$1\r\nt\r\n:2\r\n"),
    ({}, b"*0\r\n", b"%0\r\n"),
    ({b"k": b"v", b"n": 1}, b"*4\r\n$1\r\nk\r\n$1\r\nv\r\n$1\r\nn\r\n:1\r\n", b"%2\r\n$1\r\nk\r\n$1\r\nv\r\n$1\r\nn\r\n:1\r\n"),
    (1.5, b"$3\r\n1.5\r\n", b",1.5\r\n"),
    (0.1, b"$19\r\n0.10000000000000001\r\n", b",0.10000000000000001\r\n"),
    (1 / 3, b"$19\r\n0.33333333333333331\r\n", b",0.33333333333333331\r\n"),
    (3.0, b"$1\r\n3\r\n", b",3\r\n"),
    (-0.0, b"$2\r\n-0\r\n", b",-0\r\n"),
    (1e20, b"$5\r\n1e+20\r\n", b",1e+20\r\n"),
    (1e-7, b"$22\r\n9.9999999999999995e-08\r\n", b",9.9999999999999995e-08\r\n"),
    (123456789012345680.0, b"$22\r\n1.2345678901234568e+17\r\n", b",1.2345678901234568e+17\r\n"),
    (math.inf, b"$3\r\ninf\r\n", b",inf\r\n"),
    (-math.inf, b"$4\r\n-inf\r\n", b",-inf\r\n"),
    (math.nan, b"$3\r\nnan\r\n", b",nan\r\n"),
    (Double(2.5), b"$3\r\n2.5\r\n", b",2.5\r\n"),
    (Double(-math.inf), b"$4\r\n-inf\r\n", b",-inf\r\n"),
    (SimpleString(b"OK"), b"+OK\r\n", b"+OK\r\n"),
    (OK, b"+OK\r\n", b"+OK\r\n"),
    (PONG, b"+PONG\r\n", b"+PONG\r\n"),
    (QUEUED, b"+QUEUED\r\n", b"+QUEUED\r\n"),
    (NO_REPLY, b"", b""),
    (Raw(b":7\r\n"), b":7\r\n", b":7\r\n"),
    (ErrorReply("ERR boom"), b"-ERR boom\r\n", b"-ERR boom\r\n"),
    (ErrorReply("ERR a\r\nb\nc\rd"), b"-ERR a  b c d\r\n", b"-ERR a  b c d\r\n"),
    (ErrorReply("ERR trailing\r\n"), b"-ERR trailing\r\n", b"-ERR trailing\r\n"),
    (ErrorReply("ERR Protocol error: expected '$', got '\r'"),
     b"-ERR Protocol error: expected '$', got ' '\r\n", b"-ERR Protocol error: expected '$', got ' '\r\n"),
    (ErrorReply("ERR raw \udcff byte"), b"-ERR raw \xff byte\r\n", b"-ERR raw \xff byte\r\n"),
    (SetReply([b"a", b"b"]), b"*2\r\n$1\r\na\r\n$1\r\nb\r\n", b"~2\r\n$1\r\na\r\n$1\r\nb\r\n"),
    (SetReply(), b"*0\r\n", b"~0\r\n"),
    (Push([b"message", b"ch", b"hi"]), b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n",
     b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n"),
    (BigNumber(b"1234567890123456789012345678901234567890"),
     b"$40\r\n1234567890123456789012345678901234567890\r\n", b"(1234567890123456789012345678901234567890\r\n"),
    (Verbatim(b"# Server\r\nx"), b"$11\r\n# Server\r\nx\r\n", b"=15\r\ntxt:# Server\r\nx\r\n"),
    (Verbatim(b"**md**", b"mkd"), b"$6\r\n**md**\r\n", b"=10\r\nmkd:**md**\r\n"),
    (
        [{b"f": [1.5, None]}, SetReply([True]), [NULL_ARRAY, []]],
        b"*3\r\n*2\r\n$1\r\nf\r\n*2\r\n$3\r\n1.5\r\n$-1\r\n*1\r\n:1\r\n*2\r\n*-1\r\n*0\r\n",
        b"*3\r\n%1\r\n$1\r\nf\r\n*2\r\n,1.5\r\n_\r\n~1\r\n#t\r\n*2\r\n_\r\n*0\r\n",
    ),
]


@pytest.mark.parametrize("value, resp2, resp3", CASES, ids=[repr(c[0])[:40] for c in CASES])
def test_exact_bytes(value, resp2, resp3):
    assert encode(value) == resp2
    assert encode(value, resp3=False) == resp2
    assert encode(value, resp3=True) == resp3


def test_write_reply_appends():
    out = bytearray(b"+PREVIOUS\r\n")
    write_reply(out, [b"x"], False)
    write_reply(out, 5, True)
    assert out == b"+PREVIOUS\r\n*1\r\n$1\r\nx\r\n:5\r\n"


def test_error_subclass_is_an_error():
    class Moved(ErrorReply):
        pass

    assert encode(Moved("MOVED 1 127.0.0.1:7000")) == b"-MOVED 1 127.0.0.1:7000\r\n"


def test_unknown_type_is_refused():
    with pytest.raises(TypeError):
        encode(object())
    with pytest.raises(TypeError):
        encode([1, {2, 3}])


@pytest.mark.parametrize(
    "value, text",
    [(0.1, b"0.10000000000000001"), (100.0, b"100"), (1.7976931348623157e308, b"1.7976931348623157e+308"),
     (5e-324, b"4.9406564584124654e-324"), (math.inf, b"inf"), (-math.inf, b"-inf"), (-1.5, b"-1.5"),
     (math.nan, b"nan"), (-math.nan, b"-nan")],  # glibc keeps the sign of a NaN
)
def test_format_double_is_printf_17g(value, text):
    assert format_double(value) == text


# ------------------------------------------------------------------ round trip


_INCOMPLETE = object()


def _hiredis_parse(data: bytes):
    reader = hiredis.Reader(notEnoughData=_INCOMPLETE)
    reader.feed(data)
    value = reader.gets()
    assert value is not _INCOMPLETE, data
    assert reader.gets() is _INCOMPLETE and not reader.has_data()  # exactly one reply
    return value


def _expected(value, resp3: bool):
    """What hiredis should give back for ``value`` encoded in that protocol."""
    if isinstance(value, bool):
        return value if resp3 else int(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, int):
        return value
    if value is None or value is NULL_ARRAY:
        return None
    if isinstance(value, float):
        if resp3:
            return value
        return format_double(value)
    if isinstance(value, dict):
        if resp3:
            return {_expected(k, resp3): _expected(v, resp3) for k, v in value.items()}
        flat = []
        for k, v in value.items():
            flat += [_expected(k, resp3), _expected(v, resp3)]
        return flat
    if isinstance(value, (list, tuple)):
        return [_expected(item, resp3) for item in value]
    raise AssertionError(value)


scalars = (
    st.binary(max_size=30)
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.booleans()
    | st.none()
    | st.floats(allow_nan=False)
    | st.text(max_size=10)
)
replies = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.binary(max_size=8), inner, max_size=3)
    | st.lists(inner, max_size=3).map(SetReply)
    | st.lists(inner, max_size=3).map(Push),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(value=replies)
def test_round_trip_through_hiredis(value):
    for resp3 in (False, True):
        data = encode(value, resp3)
        assert _hiredis_parse(data) == _expected(value, resp3)


@pytest.mark.parametrize(
    "value, resp3, expected",
    [
        (SimpleString(b"OK"), True, b"OK"),
        (ErrorReply("ERR x\r\ny"), False, hiredis.ReplyError("ERR x  y")),
        (BigNumber(b"-12345678901234567890"), True, b"-12345678901234567890"),
        (BigNumber(b"99"), False, b"99"),
        (Verbatim(b"a\r\nb"), True, b"a\r\nb"),
        (Verbatim(b"a\r\nb"), False, b"a\r\nb"),
        (math.inf, True, math.inf),
        (math.inf, False, b"inf"),
    ],
)
def test_round_trip_special_types(value, resp3, expected):
    got = _hiredis_parse(encode(value, resp3))
    if isinstance(expected, Exception):
        assert type(got) is type(expected) and got.args == expected.args
    else:
        assert got == expected


def test_nan_round_trip():
    assert math.isnan(_hiredis_parse(encode(math.nan, True)))
