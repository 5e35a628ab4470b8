"""Group commit: concurrent appends share one transaction and one signed checkpoint per batch."""

from __future__ import annotations

import threading
import time
from typing import Any

from audit._group import GroupCommit
from audit.keys import Signer
from audit.log import AuditLog, SignedAppend
from audit.receipt import build_receipt, verify_receipt
from audit.verify import Verifier

THREADS = 16
PER_THREAD = 25


def _wait_queued(group: GroupCommit[Any, Any], count: int) -> None:
    """Wait until ``count`` submissions are queued behind the batch being written."""
    for _ in range(10000):
        with group._cond:
            if len(group._queue) >= count:
                return
        time.sleep(0.001)
    raise AssertionError(f"{count} submissions never queued")


def _blocked_group(limit: int = 256) -> tuple[GroupCommit[int, int], list[list[int]],
                                             threading.Event]:
    """A group whose first batch waits for an event, so later submissions queue up."""
    batches: list[list[int]] = []
    release = threading.Event()

    def run(items: Any) -> list[int]:
        if not batches:
            release.wait(10)
        batches.append(list(items))
        return [i * 10 for i in items]

    return GroupCommit(run, limit), batches, release


def _submit_all(group: GroupCommit[int, int], items: list[int],
                weights: dict[int, int] | None = None) -> dict[int, Any]:
    results: dict[int, Any] = {}

    def one(i: int) -> None:
        try:
            results[i] = group.submit(i, (weights or {}).get(i, 1))
        except Exception as exc:
            results[i] = exc

    first = threading.Thread(target=one, args=(items[0],))
    first.start()
    _wait_queued(group, 0)
    while not group._leading:
        time.sleep(0.001)
    rest = [threading.Thread(target=one, args=(i,)) for i in items[1:]]
    for t in rest:
        t.start()
    _wait_queued(group, len(items) - 1)
    return {"threads": [first, *rest], "results": results}


def test_submissions_queued_behind_a_commit_go_in_one_batch():
    """Everything that queued while a batch was written is written by the next one call."""
    group, batches, release = _blocked_group()
    running = _submit_all(group, list(range(6)))
    release.set()
    for t in running["threads"]:
        t.join()
    assert batches[0] == [0]
    assert sorted(batches[1]) == [1, 2, 3, 4, 5]
    assert running["results"] == {i: i * 10 for i in range(6)}
    assert group.batches == 2


def test_a_batch_holds_at_most_the_limit_of_entries():
    """Entries beyond the limit wait for the following batch; a heavy item goes alone."""
    group, batches, release = _blocked_group(limit=4)
    running = _submit_all(group, list(range(9)), weights={5: 9})
    release.set()
    for t in running["threads"]:
        t.join()
    assert all(sum(9 if i == 5 else 1 for i in b) <= 4 or b == [5] for b in batches)
    assert sorted(i for b in batches for i in b) == list(range(9))


def test_every_member_of_a_failed_batch_gets_the_error():
    """A batch that fails fails for each of its members; later batches still run."""
    calls: list[list[int]] = []
    release = threading.Event()

    def run(items: Any) -> list[int]:
        calls.append(list(items))
        if len(calls) == 1:
            release.wait(10)
            return [0]
        if len(calls) == 2:
            raise RuntimeError("disk full")
        return list(items)

    group: GroupCommit[int, int] = GroupCommit(run)
    running = _submit_all(group, [0, 1, 2, 3])
    release.set()
    for t in running["threads"]:
        t.join()
    failed = [i for i, r in running["results"].items() if isinstance(r, RuntimeError)]
    assert sorted(failed) == sorted(calls[1])
    assert group.submit(7) == 7


def _signed_concurrently(log: AuditLog) -> list[SignedAppend]:
    done: list[SignedAppend] = []
    lock = threading.Lock()

    def writer(w: int) -> None:
        for i in range(PER_THREAD):
            got = log.append_signed("decision", {"name": "m", "version": str(w)}, "ci",
                                    {"w": w, "i": i})
            with lock:
                done.append(got)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return done


def _receipt(log: AuditLog, signed: SignedAppend) -> dict[str, Any]:
    a, cp = signed.appended, signed.checkpoint
    proof = log.inclusion_proof(a.seq, cp.size)
    return build_receipt(a.envelope, a.seq, cp.size, proof, cp.note)


def _check_signed_chain(log: AuditLog, signer: Signer, done: list[SignedAppend]) -> None:
    total = THREADS * PER_THREAD
    assert sorted(d.appended.seq for d in done) == list(range(total))  # no gap, no fork
    sizes = {d.checkpoint.size for d in done}
    stored = {cp.size for cp in log.store.iter_checkpoints()}
    assert sizes == stored  # one checkpoint per batch, each one stored
    assert len(stored) == log.signed_group.batches <= total
    for d in done:
        assert d.appended.seq < d.checkpoint.size  # the checkpoint covers the entry
        verify_receipt(_receipt(log, d), [signer.verifier()])
    report = Verifier([signer.verifier()], log.origin, None).verify(
        log.store.iter_entries(), log.store.iter_checkpoints())
    assert report.ok, report.message


def test_concurrent_signed_appends_sqlite(log: AuditLog, signer: Signer):
    """16 threads x 25 signed appends: one chain, every receipt on its batch's checkpoint."""
    _check_signed_chain(log, signer, _signed_concurrently(log))


def test_concurrent_signed_appends_postgres(pg_url: str, signer: Signer):
    """The same on PostgreSQL."""
    log = AuditLog.open(pg_url, signer=signer)
    try:
        _check_signed_chain(log, signer, _signed_concurrently(log))
    finally:
        log.close()


def test_signed_many_is_one_contiguous_member_of_a_batch(log: AuditLog, signer: Signer):
    """append_signed_many beside append_signed: each bundle's entries stay together, in order."""
    from audit.log import NewEntry

    bundles: list[SignedAppend] = []
    singles: list[SignedAppend] = []
    lock = threading.Lock()

    def writer(w: int) -> None:
        for i in range(10):
            if w % 2:
                got = log.append_signed_many(
                    [NewEntry("policy_bundle", {"name": f"w{w}"}, "ci", {"i": i, "k": k})
                     for k in range(2)]
                    + [NewEntry("decision", {"name": f"w{w}"}, "ci", {"i": i, "k": 2})])
                with lock:
                    bundles.append(got)
            else:
                got = log.append_signed("decision", {"name": f"w{w}"}, "ci", {"i": i})
                with lock:
                    singles.append(got)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert log.size() == 4 * 10 * 3 + 4 * 10
    for b in bundles:
        last = b.appended.seq
        entries = [log.get(s) for s in range(last - 2, last + 1)]
        assert [e.envelope["type"] for e in entries] == ["policy_bundle"] * 2 + ["decision"]
        assert len({e.envelope["subject"]["name"] for e in entries}) == 1
        assert [e.payload["k"] for e in entries] == [0, 1, 2]
        assert len({e.payload["i"] for e in entries}) == 1
    for d in bundles + singles:
        assert d.appended.seq < d.checkpoint.size
        verify_receipt(_receipt(log, d), [signer.verifier()])
    report = Verifier([signer.verifier()], log.origin, None).verify(
        log.store.iter_entries(), log.store.iter_checkpoints())
    assert report.ok, report.message


def test_concurrent_plain_appends_keep_each_callers_order(log: AuditLog):
    """append_many from many threads: each caller's entries stay together and in order."""
    out: dict[int, list[int]] = {}

    def writer(w: int) -> None:
        from audit.log import NewEntry

        seqs: list[int] = []
        for i in range(10):
            got = log.append_many([NewEntry("event", {"name": f"w{w}"}, "ci", {"i": i, "k": k})
                                   for k in range(3)])
            assert [g.seq for g in got] == list(range(got[0].seq, got[0].seq + 3))
            seqs.extend(g.seq for g in got)
        out[w] = seqs

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(s for v in out.values() for s in v) == list(range(8 * 30))
    for seqs in out.values():
        assert seqs == sorted(seqs)
        payloads = [log.get(s).payload for s in seqs]
        assert [p["i"] for p in payloads] == [i for i in range(10) for _ in range(3)]


def test_a_lone_append_is_one_transaction(log: AuditLog):
    """With nobody else appending, each signed append is its own batch and checkpoint."""
    for i in range(3):
        got = log.append_signed("decision", {"name": "m"}, "ci", {"i": i})
        assert got.checkpoint.size == i + 1
    assert log.signed_group.batches == 3
