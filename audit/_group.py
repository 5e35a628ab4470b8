"""Group commit: concurrent appends of one process sequenced in one transaction.

Owns the leader/follower hand-off only; what a batch writes is the caller's
``run`` (:class:`audit.log.AuditLog`). A thread that submits while no batch
is being written becomes the leader: it takes what is queued (its own item
first in line order, at most ``limit`` entries), writes it in one
transaction, hands every member its own result, and lets the next waiting
thread lead. Threads that submit while a batch is being written queue up and
go together in the next one, so a batch is what arrived during one commit:
no timer, no added latency for a lone caller (its batch is itself, one
transaction, as before). This is the batching of transparency logs (many
entries sequenced together, one checkpoint signed per batch; RFC 9162 §4.1
leaves the sequencing interval to the log) with a bound of one commit time.

Every member of a batch learns the batch's fate: all of it committed, or
none of it (the transaction rolled back) and each member gets the error.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["GroupCommit"]

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")

DEFAULT_LIMIT = 256
"""Entries per batch at most: bounds one transaction's time and size."""


class _Slot(Generic[ItemT, ResultT]):
    __slots__ = ("done", "error", "item", "result", "weight")

    def __init__(self, item: ItemT, weight: int) -> None:
        self.item, self.weight = item, weight
        self.done = False
        self.result: ResultT | None = None
        self.error: BaseException | None = None


class GroupCommit(Generic[ItemT, ResultT]):
    """Sequence concurrent submissions into batches written by one ``run`` call each.

    Args:
        run: writes a batch of items in one transaction and returns one result
            per item, in order; raising means none of them was written.
        limit: entries per batch at most (an item heavier than this goes alone).
    """

    def __init__(self, run: Callable[[Sequence[ItemT]], Sequence[ResultT]],
                 limit: int = DEFAULT_LIMIT) -> None:
        self._run = run
        self._limit = limit
        self._cond = threading.Condition()
        self._queue: deque[_Slot[ItemT, ResultT]] = deque()
        self._leading = False
        self.batches = 0
        """Batches written so far (for tests and benchmarks: how much was grouped)."""

    def submit(self, item: ItemT, weight: int = 1) -> ResultT:
        """Write ``item`` (``weight`` entries) in the next batch; return its own result.

        Raises:
            whatever ``run`` raised for the batch holding ``item`` (nothing of it written).
        """
        slot: _Slot[ItemT, ResultT] = _Slot(item, weight)
        with self._cond:
            self._queue.append(slot)
            while not slot.done:
                if self._leading:
                    self._cond.wait()
                    continue
                self._leading = True
                batch = self._take()
                self._cond.release()
                try:
                    self._write(batch)
                finally:
                    self._cond.acquire()
                    self._leading = False
                    self._cond.notify_all()
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]

    def _take(self) -> list[_Slot[ItemT, ResultT]]:
        """The queue's head up to ``limit`` entries (always at least one item)."""
        batch = [self._queue.popleft()]
        total = batch[0].weight
        while self._queue and total + self._queue[0].weight <= self._limit:
            slot = self._queue.popleft()
            total += slot.weight
            batch.append(slot)
        return batch

    def _write(self, batch: list[_Slot[ItemT, ResultT]]) -> None:
        """Run one batch; every slot gets its result or the batch's error."""
        try:
            results = self._run([s.item for s in batch])
            if len(results) != len(batch):  # pragma: no cover - a bug in run
                raise RuntimeError(f"group commit: {len(results)} results for {len(batch)}")
            for slot, result in zip(batch, results, strict=True):
                slot.result = result
        except BaseException as exc:  # each member learns the batch failed
            for slot in batch:
                slot.error = exc
        finally:
            self.batches += 1
            for slot in batch:
                slot.done = True
