"""A simulated network: per-message drop, delay (hence reordering) and duplication, and
partitions of any shape as a set of blocked directed links.

Rules:
- A message on a blocked link is dropped, whether the link was blocked when it was sent
  or becomes blocked while it is in flight; so a partition takes effect at once.
- Otherwise it is dropped with ``drop_rate``, else delivered after a uniform delay in
  [``delay_min_ms``, ``delay_max_ms``], and a second copy with ``duplicate_rate``.
- All randomness comes from the simulation's seeded ``random.Random``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from kraft.raft.messages import Message


@dataclass(slots=True)
class NetworkConditions:
    drop_rate: float = 0.0
    duplicate_rate: float = 0.0
    delay_min_ms: int = 1
    delay_max_ms: int = 5


@dataclass(slots=True)
class SimNetwork:
    rng: random.Random
    conditions: NetworkConditions = field(default_factory=NetworkConditions)
    blocked: set[tuple[int, int]] = field(default_factory=set)
    sent: int = 0
    dropped: int = 0

    def transmit(self, message: Message) -> list[int]:
        """Delays (ms) after which copies of ``message`` arrive; empty when it is lost."""
        self.sent += 1
        conditions = self.conditions
        if not self.link_open(message.source, message.destination) \
                or self.rng.random() < conditions.drop_rate:
            self.dropped += 1
            return []
        copies = 2 if self.rng.random() < conditions.duplicate_rate else 1
        return [self.rng.randint(conditions.delay_min_ms, conditions.delay_max_ms) for _ in range(copies)]

    def link_open(self, source: int, destination: int) -> bool:
        return (source, destination) not in self.blocked

    def isolate(self, node: int, others: list[int]) -> None:
        for other in others:
            if other != node:
                self.blocked |= {(node, other), (other, node)}

    def split(self, groups: list[list[int]]) -> None:
        """No link between nodes of different groups."""
        for index, group in enumerate(groups):
            for other_group in groups[index + 1:]:
                for a in group:
                    for b in other_group:
                        self.blocked |= {(a, b), (b, a)}

    def block_one_way(self, source: int, destination: int) -> None:
        self.blocked.add((source, destination))

    def heal(self) -> None:
        self.blocked.clear()
        self.conditions = NetworkConditions()
