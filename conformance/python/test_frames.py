"""Versions, header values, binary bodies and custom headers, end to end."""

import hashlib

from stomp_client import unique

# Header values with characters that STOMP 1.1/1.2 must escape (":" "\n" "\\", and "\r" in 1.2);
# STOMP 1.0 has no escaping, so only ":" (legal after the first colon) is used there.
SPECIAL_HEADERS = {
    "1.0": {"x-colon": "a:b:c", "x-url": "http://example.test:8080/p?q=1"},
    "1.1": {"x-colon": "a:b:c", "x-newline": "line1\nline2", "x-backslash": "back\\slash",
            "x-mixed": "k:v\nk2:v2\\end"},
    "1.2": {"x-colon": "a:b:c", "x-newline": "line1\nline2", "x-backslash": "back\\slash",
            "x-mixed": "k:v\nk2:v2\\end", "x-cr": "a\rb"},
}


def test_connect_send_receive_with_special_header_values(clients, version):
    c = clients(version)
    connected = c.rec.connected_frame.headers
    if version != "1.0":
        assert connected.get("version") == version, f"CONNECTED {connected}"
    else:
        assert connected.get("version") in (None, "1.0"), f"CONNECTED {connected}"

    dest = f"/queue/{unique('ver')}"
    c.subscribe(dest)
    headers = SPECIAL_HEADERS[version]
    c.send_all(dest, [f"hello {version}"], headers=headers)
    assert c.rec.wait_bodies([f"hello {version}"]) == [f"hello {version}"]
    got = c.message(f"hello {version}").headers
    for k, v in headers.items():
        assert got.get(k) == v, f"header {k}: sent {v!r}, received {got.get(k)!r}"
    assert got.get("destination") == dest


BINARY = bytes(range(256)) + b"\x00\x00mid\x00dle\x00" + b"\xc3\x28\xa0\xa1\xe2\x28\xa1\xff\xfe" + b"\x00"


def test_binary_body_round_trips(clients, version):
    c = clients(version, auto_decode=False)
    dest = f"/queue/{unique('bin')}"
    c.subscribe(dest)
    c.send_all(dest, [BINARY], headers={"content-type": "application/octet-stream"})
    got = c.rec.wait_bodies([BINARY])
    assert len(got) == 1, f"{len(got)} messages"
    assert got[0] == BINARY, f"body differs: sent {len(BINARY)} bytes, got {len(got[0])}"
    h = c.rec.messages[0].headers
    assert h.get("content-length") == str(len(BINARY))
    assert h.get("content-type") == "application/octet-stream"


def test_custom_headers_preserved(clients, version):
    producer, consumer = clients(version), clients(version)
    dest = f"/topic/{unique('hdr')}"
    sub_id = consumer.subscribe(dest)
    custom = {
        "x-app-id": "42",
        "x-trace": "abc-def-0123",
        "correlation-id": unique("corr"),
        "x-unicode": "grüße ✓",
    }
    if version != "1.0":
        custom["x-spaces"] = " padded value "  # 1.1+: no trimming of header values
    producer.send_all(dest, ["with-headers"], headers=custom)
    assert consumer.rec.wait_bodies(["with-headers"]) == ["with-headers"]
    h = consumer.message("with-headers").headers
    for k, v in custom.items():
        assert h.get(k) == v, f"header {k}: sent {v!r}, received {h.get(k)!r}"
    assert h.get("destination") == dest
    assert h.get("message-id")
    if version != "1.0":
        assert h.get("subscription") == sub_id


def test_five_mebibyte_large_message_round_trips(clients, version):
    """A body over the broker's large-message-threshold (100 KiB) is written to a file as it
    arrives and streamed back out of it in chunks; stomp.py must get it byte-exact."""
    c = clients(version, auto_decode=False)
    dest = f"/queue/{unique('large')}"
    c.subscribe(dest)
    body = hashlib.sha256(b"seed").digest() * (5 * 1024 * 1024 // 32) + b"\x00tail\xff"
    c.send_all(dest, [body], headers={"content-type": "application/octet-stream"})
    assert c.rec.wait_for(lambda: len(c.rec.messages) >= 1), "no MESSAGE"
    got = c.rec.messages[0].body
    assert len(got) == len(body), f"sent {len(body)} bytes, got {len(got)}"
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(body).hexdigest()
    assert c.rec.messages[0].headers.get("content-length") == str(len(body))
