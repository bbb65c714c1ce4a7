"""The node's record of which owner each stored object belongs to."""

from __future__ import annotations

from ember.node.object_owners import ObjectOwners


def test_a_dead_owner_gives_back_exactly_its_objects():
    o = ObjectOwners()
    assert o.record(b"x1", b"A", b"n1")
    assert o.record(b"x2", b"A", b"n1")
    assert o.record(b"y1", b"B", b"n1")
    assert sorted(o.owners_died([b"A"])) == [b"x1", b"x2"]
    assert o.owner(b"y1") == b"B"
    assert o.owners_died([b"A"]) == []  # told twice: nothing more
    assert len(o) == 1


def test_an_object_made_for_a_dead_owner_is_refused():
    o = ObjectOwners()
    o.owners_died([b"A"])
    assert not o.record(b"late", b"A", b"n1")
    assert o.record(b"ok", b"B", b"n1")


def test_a_dead_node_takes_every_owner_that_lived_on_it():
    o = ObjectOwners()
    o.record(b"x", b"A", b"n1")
    o.record(b"y", b"B", b"n1")
    o.record(b"z", b"C", b"n2")
    assert sorted(o.owners_died([], [b"n1"])) == [b"x", b"y"]
    assert o.owner(b"z") == b"C"
    assert not o.record(b"w", b"D", b"n1")  # an owner on the dead node


def test_freed_objects_are_forgotten_with_their_owner():
    o = ObjectOwners()
    o.record(b"x", b"A", b"n1")
    o.forget(b"x")
    assert len(o) == 0
    assert o.node_of(b"A") == b""
    assert o.owners_died([], [b"n1"]) == []


def test_objects_without_an_owner_are_kept():
    o = ObjectOwners()
    assert o.record(b"x", b"", b"")
    assert o.owner(b"x") == b""
