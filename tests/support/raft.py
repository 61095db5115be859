"""Helpers shared by the in-process Raft driver and transport tests."""

from __future__ import annotations

import trio


async def wait_for(condition, limit_s: float, what: str, poll_s: float = 0.01) -> float:
    """Polls ``condition`` on trio's clock (virtual or real); returns how long it took."""
    start = trio.current_time()
    while not condition():
        if trio.current_time() - start > limit_s:
            raise AssertionError(f"expected {what} within {limit_s} s, it did not happen")
        await trio.sleep(poll_s)
    return trio.current_time() - start


def the_leader(replicas: list):
    """The running replica that leads the highest epoch, asserting one leader per epoch."""
    leaders = [r for r in replicas if r.running and r.driver.is_leader]
    assert len({r.driver.epoch for r in leaders}) == len(leaders), "two leaders in one epoch"
    return max(leaders, key=lambda r: r.driver.epoch) if leaders else None
