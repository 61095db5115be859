"""Which whole segments retention deletes, oldest first (Kafka's UnifiedLog.deleteOldSegments).

Rules:
- Three passes, in Kafka's order, each over the segments the previous pass left:
  1. ``retention.ms`` (only with ``cleanup.policy`` delete; -1 keeps forever): a segment goes
     when ``now - largest timestamp > retention.ms``;
  2. ``retention.bytes`` (only with delete; -1 means no limit): while the log is larger than
     the limit, the oldest segment goes if the log is still at least that large without it;
  3. the log start offset (always): a segment goes when the next one starts at or below it
     (DeleteRecords and a checkpointed log start offset already cover it).
- A pass stops at the first segment that does not qualify, so only a prefix is ever deleted.
- A segment qualifies only if all of it is below the high watermark (its upper bound, the next
  segment's base offset or the log end, is at or below it): uncommitted data is never deleted.
- The active segment qualifies like the others when it is not empty; the log then rolls first,
  as Kafka does, so an idle topic still empties. An empty active segment never goes.
- A segment's largest timestamp is its largest batch timestamp, or, with none, the time it was
  opened or created (Kafka uses the file's modification time there).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from storage.config import LogConfig
from storage.segment import NO_TIMESTAMP, LogSegment


def largest_timestamp_ms(segment: LogSegment) -> int:
    return segment.max_timestamp_ms if segment.max_timestamp_ms != NO_TIMESTAMP else segment.created_ms


def _count_prefix(segments: Sequence[LogSegment], high_watermark: int, log_end_offset: int,
                  qualifies: Callable[[LogSegment, LogSegment | None], bool]) -> int:
    count = 0
    for index, segment in enumerate(segments):
        following = segments[index + 1] if index + 1 < len(segments) else None
        upper_bound = following.base_offset if following is not None else log_end_offset
        if following is None and segment.size_bytes == 0:
            break
        if upper_bound > high_watermark or not qualifies(segment, following):
            break
        count += 1
    return count


def count_by_time(segments: Sequence[LogSegment], config: LogConfig, now_ms: int, high_watermark: int,
                  log_end_offset: int) -> int:
    if not config.deletes or config.retention_ms < 0:
        return 0
    return _count_prefix(segments, high_watermark, log_end_offset,
                         lambda segment, _: now_ms - largest_timestamp_ms(segment) > config.retention_ms)


def count_by_size(segments: Sequence[LogSegment], config: LogConfig, high_watermark: int,
                  log_end_offset: int) -> int:
    if not config.deletes or config.retention_bytes < 0:
        return 0
    excess = sum(segment.size_bytes for segment in segments) - config.retention_bytes
    if excess < 0:
        return 0

    def qualifies(segment: LogSegment, _: LogSegment | None) -> bool:
        nonlocal excess
        if excess - segment.size_bytes < 0:
            return False
        excess -= segment.size_bytes
        return True

    return _count_prefix(segments, high_watermark, log_end_offset, qualifies)


def count_below_log_start(segments: Sequence[LogSegment], log_start_offset: int, high_watermark: int,
                          log_end_offset: int) -> int:
    return _count_prefix(segments, high_watermark, log_end_offset,
                         lambda _, following: following is not None and following.base_offset <= log_start_offset)
