"""Acknowledgement modes: what is redelivered to a new connection after a disconnect."""

from collections import Counter

import pytest

from stomp_client import QUIET, unique


def _drain_with_sentinel(client, dest, producer, expected):
    """Subscribes `client` (auto ack) to `dest`, sends a sentinel, and returns every body
    received once `expected` and the sentinel are in (plus a quiet period for extras)."""
    client.subscribe(dest)
    sentinel = unique("sentinel")
    producer.send_all(dest, [sentinel])
    client.rec.wait_bodies(list(expected) + [sentinel])
    client.rec.wait_for(lambda: False, QUIET)
    return client.rec.bodies(), sentinel


def _modes(version):
    return ["auto", "client"] + (["client-individual"] if version != "1.0" else [])


@pytest.mark.parametrize("mode", ["auto", "client", "client-individual"])
def test_unacked_messages_are_redelivered_after_disconnect(clients, version, mode):
    if mode not in _modes(version):
        pytest.skip(f"STOMP {version} has no ack mode {mode}")
    dest = f"/queue/{unique('ack-' + mode)}"
    producer = clients(version)
    first = clients(version)
    first.subscribe(dest, ack=mode)
    sent = ["a0", "a1", "a2", "a3"]
    producer.send_all(dest, sent)
    assert Counter(first.rec.wait_bodies(sent)) == Counter(sent)

    if mode == "auto":
        expected = []  # auto: delivered means consumed
    elif mode == "client":
        first.ack(first.message("a1"))  # cumulative: a0 and a1
        expected = ["a2", "a3"]
    else:
        first.ack(first.message("a1"))  # individual: a1 and a3 only
        first.ack(first.message("a3"))
        expected = ["a0", "a2"]
    assert first.disconnect(), "no RECEIPT for DISCONNECT"

    second = clients(version)
    got, sentinel = _drain_with_sentinel(second, dest, producer, expected)
    assert Counter(got) == Counter(expected + [sentinel]), (
        f"ack={mode}: expected redelivery of {expected}, got {got}"
    )


def test_nack_redelivers(clients, version11):
    version = version11
    dest = f"/queue/{unique('nack')}"
    producer = clients(version)
    consumer = clients(version)
    consumer.subscribe(dest, ack="client-individual")
    producer.send_all(dest, ["n0", "n1"])
    consumer.rec.wait_bodies(["n0", "n1"])

    consumer.ack(consumer.message("n1"))
    consumer.nack(consumer.message("n0"))
    # n0 comes back to the only consumer; n1 does not.
    consumer.rec.wait_bodies(["n0", "n1", "n0"])
    consumer.rec.wait_for(lambda: False, QUIET)
    got = consumer.rec.bodies()
    assert Counter(got) == Counter({"n0": 2, "n1": 1}), f"after NACK of n0 got {got}"
    redelivered = [m for m in consumer.rec.messages if m.body == "n0"][1]
    consumer.ack(redelivered)
    assert consumer.disconnect(), "no RECEIPT for DISCONNECT"

    # Both are settled now: a new consumer sees only the sentinel.
    after = clients(version)
    got, sentinel = _drain_with_sentinel(after, dest, producer, [])
    assert got == [sentinel], f"settled messages came back: {got}"
