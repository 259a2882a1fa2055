"""Point-to-point queues and publish-subscribe topics."""

from collections import Counter

from stomp_client import QUIET, unique


def test_queue_round_robin_between_two_consumers(clients, version):
    dest = f"/queue/{unique('p2p')}"
    c1, c2, producer = clients(version), clients(version), clients(version)
    c1.subscribe(dest)
    c2.subscribe(dest)
    sent = [f"m{i}" for i in range(20)]
    producer.send_all(dest, sent)

    c1.rec.wait_for(lambda: len(c1.rec.messages) + len(c2.rec.messages) >= len(sent))
    c1.rec.wait_for(lambda: False, QUIET)  # anything extra (duplicates) would arrive now
    got1, got2 = c1.rec.bodies(), c2.rec.bodies()

    assert sorted(got1 + got2) == sorted(sent), (got1, got2)  # none lost, none duplicated
    assert not set(got1) & set(got2)
    # Round-robin: each consumer gets every other message.
    assert len(got1) == len(got2) == 10, (got1, got2)
    idx1 = sorted(sent.index(b) for b in got1)
    assert len({i % 2 for i in idx1}) == 1, f"not alternating: consumer 1 got {got1}"


def test_topic_fans_out_to_every_subscriber(clients, version):
    dest = f"/topic/{unique('fanout')}"
    subs = [clients(version) for _ in range(3)]
    for s in subs:
        s.subscribe(dest)
    producer = clients(version)
    sent = [f"t{i}" for i in range(10)]
    producer.send_all(dest, sent)

    for s in subs:
        s.rec.wait_bodies(sent)
    subs[0].rec.wait_for(lambda: False, QUIET)
    for n, s in enumerate(subs):
        got = s.rec.bodies()
        assert Counter(got) == Counter(sent), f"subscriber {n} got {got}"
        for m in s.rec.messages:
            assert m.headers.get("destination") == dest
