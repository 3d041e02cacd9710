"""Lockstep acknowledgements: which bar the replay exchange's timeline may pass."""

from __future__ import annotations

import pytest

from rrr_live.exchange.lockstep import Lockstep


def test_one_client_any_ack_of_the_bar_or_a_later_one_releases_it() -> None:
    acks = Lockstep()
    assert not acks.released(10, [1])
    acks.ack(1, 20)  # a later bar covers earlier ones
    assert acks.released(10, [1]) and acks.released(20, [1]) and not acks.released(30, [1])
    # a restarted client (a new connection) acknowledging releases the bar too
    assert acks.released(20, [])


def test_shards_wait_for_each_other_until_one_is_gone() -> None:
    acks = Lockstep(clients=2)
    acks.ack(1, 10)
    assert not acks.released(10, [1, 2])  # shard 2 has not decided bar 10 yet
    acks.ack(2, 10)
    assert acks.released(10, [1, 2])
    acks.ack(1, 20)
    acks.forget(2)  # shard 2 killed: shard 1 is not held up by it
    assert acks.released(20, [1])
    acks.changed.clear()
    acks.ack(3, 30)  # the restarted shard (a new connection) is waited for again
    assert acks.changed.is_set()
    assert not acks.released(30, [1, 3]) and acks.released(30, [3])


def test_at_least_one_client() -> None:
    with pytest.raises(ValueError, match="lockstep_clients"):
        Lockstep(clients=0)
