#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets: a handful of tiny inputs per target, under
corpus/<target>/. The files are checked in; run this again only to change them.

Protobuf inputs are written in the wire format by hand (no generated modules needed): a tag is
(field number << 3) | wire type, 0 for varints and 2 for bytes and nested messages.
"""
import base64
import pathlib
import shutil
import struct


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def vfield(num, value):
    return varint(num << 3) + varint(value)


def bfield(num, value):
    if isinstance(value, str):
        value = value.encode()
    return varint(num << 3 | 2) + varint(len(value)) + value


def ffield(num, value):  # a float (wire type 5)
    return varint(num << 3 | 5) + struct.pack("<f", value)


def timestamp(seconds, nanos=0):
    return vfield(1, seconds) + (vfield(2, nanos) if nanos else b"")


def actor(type_, id_=""):
    return vfield(1, type_) + (bfield(2, id_) if id_ else b"")


def identifier(type_, value):
    return vfield(1, type_) + bfield(2, value)


def event(event_id="ev_1", channel=1, kind=1, actor_msg=None, **extra):
    out = bfield(1, event_id) if event_id else b""
    out += vfield(2, channel) + vfield(3, kind)
    out += bfield(5, actor_msg if actor_msg is not None else actor(1))
    if "occurred_at" in extra:
        out += bfield(4, extra["occurred_at"])
    if "summary" in extra:
        out += bfield(6, extra["summary"])
    if "body" in extra:
        out += bfield(7, extra["body"])
    if "sentiment" in extra:
        out += ffield(8, extra["sentiment"])
    if "conversation_id" in extra:
        out += bfield(9, extra["conversation_id"])
    for k, v in extra.get("attributes", {}).items():
        out += bfield(11, bfield(1, k) + bfield(2, v))
    if "visibility" in extra:
        out += vfield(12, extra["visibility"])
    return out


def b64(raw):
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=")


NOW_S = 1700000000  # tests/fuzz/request_checks.h kNowMs, in seconds

SEEDS = {
    "fuzz_cursor": {
        "cursor": b64("c1|cus_1|1700000000000-0"),
        "cursor_alerts": b64("c1|alerts:acme|1700000000000-3"),
        "page_token_desc": b64("p1|cus_1|desc|1700000000000-0|0"),
        "page_token_asc": b64("p1|cus_1|asc|1-2|12345678901234567890"),
        "padded": base64.urlsafe_b64encode(b"c1|c|0-0"),
        "not_base64": b"c1|cus_1|1-0",
    },
    # <piece size byte> <RESP2 replies>: a snapshot's EXEC, an XRANGE page, a status, errors.
    "fuzz_reply_reader": {
        "exec": b"\x03*3\r\n*2\r\n$3\r\n1-0\r\n*2\r\n$1\r\ne\r\n$5\r\nhello\r\n"
                b"*0\r\n*-1\r\n:42\r\n",
        "status_error": b"\x00+OK\r\n-ERR nope\r\n$-1\r\n:-9223372036854775808\r\n",
        "binary": b"\x07$6\r\nA\x00n\r\nn\r\n$0\r\n\r\n",
        "nested": b"\x01*1\r\n*1\r\n*1\r\n*2\r\n+deep\r\n:1\r\n",
        "malformed": b"\x02*2\r\n:1\r\n?x\r\n",
    },
    # FuzzedDataProvider reads numbers from the end: <text> <allow flag> <max_bytes, 2 bytes LE>.
    "fuzz_text_validation": {
        "ascii": b"acme-tenant_1\x00\x40\x00",
        "newline": b"line one\nline two\t\x01\x40\x00",
        "utf8": "Zoë 東京 🎉".encode() + b"\x00\x40\x00",
        "c1_control": b"a\xc2\x85b\x00\x40\x00",
        "bad_utf8": b"\xed\xa0\x80\xc0\xaf\xf4\x90\x80\x80\x00\x40\x00",
        "token": b"ev_1700000000000\x00\x80\x00",
    },
    # <value> <type byte>: the type is byte % 11 - 1 (1 PHONE .. 8 CRM_ID).
    "fuzz_key_encoding": {
        "phone": b"+1 (415) 555-0100\x02",
        "phone_00": b"0044 20 7946 0958\x02",
        "email": b" Ann@Example.COM \x03",
        "social": b"twitter:@@Ann\x08",
        "loyalty": b"ab-12 34\x07",
        "bytes": b"a{b}c:d%e\xff\x00\x04",
    },
}

customer = bfield(2, bfield(1, "cus_1"))
by_phone = bfield(2, bfield(2, identifier(1, "+1 415 555 0100")))
SEEDS["fuzz_validation"] = {
    "one_event": bfield(1, "acme") + customer + bfield(4, event()),
    "by_identifier": bfield(1, "acme") + by_phone + vfield(3, 1) + bfield(4, event(
        event_id="", channel=3, kind=2, actor_msg=actor(2, "agent_7"),
        occurred_at=timestamp(NOW_S - 60, 5000), summary="Call", body="Hi!\nBye.",
        sentiment=-0.5, attributes={"order": "A-1"}, visibility=4)),
    "two_events": bfield(1, "acme") + customer + bfield(4, event("a")) + bfield(4, event(
        "b", kind=12, conversation_id="conv_1")),
    "duplicate_ids": bfield(1, "acme") + customer + bfield(4, event("a")) + bfield(4, event("a")),
    "bad_tenant": bfield(1, "ac{me}") + customer + bfield(4, event()),
}


def fact(type_, name, value="", expires=None, due=None, **extra):
    out = vfield(1, type_) + bfield(2, name) + (bfield(3, value) if value else b"")
    if expires is not None:
        out += bfield(4, timestamp(expires))
    if due is not None:
        out += bfield(5, timestamp(due))
    if "case_id" in extra:
        out += bfield(6, extra["case_id"])
    if "visibility" in extra:
        out += vfield(8, extra["visibility"])
    return out


SEEDS["fuzz_fact_validation"] = {
    "collected": bfield(1, "acme") + customer + bfield(4, actor(3, "bot_1")) + vfield(5, 2) +
                 bfield(6, fact(2, "order.number", "A-123")),
    "verification": bfield(1, "acme") + by_phone + bfield(4, actor(2, "agent_7")) +
                    vfield(5, 3) + bfield(6, fact(1, "dob", expires=NOW_S + 3600)),
    "promise": bfield(1, "acme") + customer + bfield(4, actor(2, "agent_7")) + vfield(5, 1) +
               bfield(6, fact(4, "refund", "issue refund", due=NOW_S + 86400, case_id="case_1",
                              visibility=3)),
    "several": bfield(1, "acme") + customer + bfield(4, actor(1)) + vfield(5, 4) +
               bfield(6, fact(3, "restart_router")) + bfield(6, fact(4, "callback")) +
               bfield(6, fact(2, "Bad Name", "x")),
}

# Stored records as the Function library's cjson writes them, and the JSON corners.
SEEDS["fuzz_json_value"] = {
    "empty": b'{}',
    "case": b'{"s":"o","tp":"refund","op":1733400000123,"oh":[{"t":1,"i":"a-7"}],'
            b'"pr":{"due":1.7e+12}}',
    "escapes": b'{"e":"q\\" \\\\ \\/ \\b\\f\\n\\r\\t \\u00e9 \\ud83d\\ude00"}',
    "values": b'{"a":[1,-2.5e-3,0,true,false,null,[],{}]}',
    # Past the 40 members whose keys are compared pairwise: the sorted check.
    "many_keys": ("{" + ",".join('"k%d":%d' % (i, i) for i in range(45)) + "}").encode(),
    "repeated_key": ("{" + ",".join('"k%d":%d' % (i % 44, i) for i in range(45)) + "}").encode(),
}


def main():
    root = pathlib.Path(__file__).resolve().parent / "corpus"
    for target, seeds in SEEDS.items():
        folder = root / target
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for name, data in seeds.items():
            (folder / name).write_bytes(data)


if __name__ == "__main__":
    main()
