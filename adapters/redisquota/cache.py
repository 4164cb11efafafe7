"""What a handler remembers locally (the `exhaustedCache` switch), so a flood of requests for a used-up
bucket does not reach Redis.

- Exhausted buckets: when Redis answers that a bucket has nothing left, it also says when room opens
  again (the end of a fixed window; the moment the oldest bucket of a rolling window leaves it). Until
  then, by this replica's clock, every request for that bucket is denied here, with the answer Redis
  would give. Only another replica's faster clock could free room sooner, so the cache never grants
  anything and never denies longer than the window says.
- Answered deduplication ids: a retried request gets the earlier answer even when that answer came from
  the exhausted cache (Redis never saw it), exactly as Redis's own deduplication would answer.
"""

from __future__ import annotations

from collections import OrderedDict

#: Past this many entries, a map drops the ones that have expired (and, if that is not enough, all).
_SOFT_LIMIT = 4_096
_HARD_LIMIT = 65_536


class ExhaustedBuckets:
    """Bucket state key -> the time (ns, on the handler's clock) at which it has room again."""

    def __init__(self) -> None:
        self._until: dict[str, int] = {}

    def until(self, key: str, now: int) -> int:
        """When `key` has room again, or 0 when it is not known to be exhausted at `now`."""
        until = self._until.get(key, 0)
        return until if until > now else 0

    def add(self, key: str, until: int, now: int) -> None:
        if until <= now:
            return
        if len(self._until) >= _SOFT_LIMIT and key not in self._until:
            self._until = {k: u for k, u in self._until.items() if u > now}
            if len(self._until) >= _HARD_LIMIT:
                self._until.clear()
        self._until[key] = until

    def clear(self) -> None:
        self._until.clear()

    def __len__(self) -> int:
        return len(self._until)


class AnsweredIds:
    """Deduplication id -> (granted, end of its validity ns, forget at ns), for `period` ns each."""

    def __init__(self, period: int) -> None:
        self._period = period
        self._answers: OrderedDict[str, tuple[int, int, int]] = OrderedDict()

    def get(self, dedup_id: str, now: int) -> tuple[int, int] | None:
        """(granted, end of validity) of the earlier answer, if it is still remembered."""
        answer = self._answers.get(dedup_id)
        if answer is None or now >= answer[2]:
            return None
        return answer[0], answer[1]

    def add(self, dedup_id: str, granted: int, end: int, now: int) -> None:
        answers = self._answers
        while answers:  # oldest first (on a clock that only moves forward)
            first = next(iter(answers.values()))
            if first[2] > now and len(answers) < _HARD_LIMIT:
                break
            answers.popitem(last=False)
        answers[dedup_id] = (granted, end, now + self._period)
        answers.move_to_end(dedup_id)

    def clear(self) -> None:
        self._answers.clear()

    def __len__(self) -> int:
        return len(self._answers)
