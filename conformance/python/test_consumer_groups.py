"""Consumer groups on a topic (Kafka-style): `/topic/ADDRESS::GROUP` with real stomp.py
clients. Every group gets every message, its members share them round-robin, a durable group
(`durable:true`) keeps collecting while all its members are away; and the README's recipe runs
as printed.
"""

import re
from collections import Counter
from pathlib import Path

from stomp_client import QUIET, unique

README = Path(__file__).resolve().parents[2] / "README.md"


def _three_groups(prefix):
    # Group names are queue names, unique broker-wide: unique per test run.
    return [unique(f"{prefix}-{g}") for g in ("billing", "shipping", "audit")]


def test_three_groups_of_three_consumers_each_get_every_message(clients, version):
    address = unique("orders")
    groups = _three_groups("g")
    members = {}
    for g in groups:
        for i in range(3):
            c = clients(version)
            c.subscribe(f"/topic/{address}::{g}")
            members[(g, i)] = c
    producer = clients(version)
    sent = [f"order {n}" for n in range(30)]
    producer.send_all(f"/topic/{address}", sent)

    everyone = list(members.values())
    everyone[0].rec.wait_for(
        lambda: sum(len(c.rec.messages) for c in everyone) >= len(groups) * len(sent))
    everyone[0].rec.wait_for(lambda: False, QUIET)  # duplicates would arrive now
    for g in groups:
        got = [members[(g, i)].rec.bodies() for i in range(3)]
        # Each group: every message exactly once ...
        assert Counter(b for share in got for b in share) == Counter(sent), (g, got)
        # ... shared round-robin by its three members.
        assert [len(share) for share in got] == [10, 10, 10], (g, got)


def test_a_durable_group_keeps_messages_while_all_its_members_are_away(clients, version):
    address = unique("orders")
    group = unique("billing")
    dest = f"/topic/{address}::{group}"
    for _ in range(3):
        m = clients(version)
        m.subscribe(dest, headers={"durable": "true"})
        assert m.disconnect()
    producer = clients(version)
    sent = [f"while-away {n}" for n in range(6)]
    producer.send_all(f"/topic/{address}", sent)

    back = clients(version)
    back.subscribe(dest, headers={"durable": "true"})
    assert back.rec.wait_bodies(sent) == sent
    back.rec.wait_for(lambda: False, QUIET)
    assert back.rec.bodies() == sent


def test_a_non_durable_group_keeps_nothing_once_its_members_are_gone(clients, version):
    address = unique("orders")
    dest = f"/topic/{address}::{unique('live')}"
    m = clients(version)
    m.subscribe(dest)
    assert m.disconnect()
    producer = clients(version)
    producer.send_all(f"/topic/{address}", ["lost"])
    back = clients(version)
    back.subscribe(dest)
    back.rec.wait_for(lambda: False, QUIET)
    assert back.rec.bodies() == []


def _readme_recipe() -> str:
    text = README.read_text()
    section = text.split("## Consumer groups on a topic (Kafka-style)", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README's consumer-group recipe has no python block"
    return match.group(1)


def test_the_readme_recipe_runs_as_printed(broker):
    """Runs the README's stomp.py example against the test broker, with its address and
    group names made unique, and checks what it promises: 3 of the 9 orders per member, all
    9 per group."""
    code = _readme_recipe()
    host, port = broker.address
    assert '("127.0.0.1", 61613)' in code
    code = code.replace('("127.0.0.1", 61613)', f'("{host}", {port})')
    address = unique("orders")
    code = code.replace("/topic/orders", f"/topic/{address}")
    groups = _three_groups("readme")
    code = code.replace('["billing", "shipping", "audit"]', repr(groups))
    scope = {}
    exec(compile(code, str(README), "exec"), scope)
    members = scope["members"]
    assert len(members) == 9
    orders = [f"order {n}" for n in range(9)]
    for g in groups:
        shares = [members[f"{g}-{i}"][1].got for i in range(3)]
        assert [len(s) for s in shares] == [3, 3, 3], (g, shares)
        assert Counter(b for s in shares for b in s) == Counter(orders), (g, shares)
