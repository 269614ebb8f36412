"""Manual decisions: link, unlink, merge, unmerge, "not the same person", review resolution.

Every decision is a manual link (``mpi_record.manual``) the engine never changes, is recorded as
an event with who, when, why and the score the engine gives the pair, and rebuilds the golden
records it touches. Locking: a decision first waits (sorted, with a timeout) for the advisory
locks of every resident and record it touches, then writes; the engine only ever *tries* those
locks, so stewards and the engine cannot deadlock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import asyncpg
import orjson

from phix.errors import Category, FhirError
from phix.mpi import blocking, links, residents, review, store
from phix.mpi.engine import Engine
from phix.mpi.features import from_patient
from phix.storage.repository import new_id

LOCK_TIMEOUT = "5s"


@dataclass(slots=True)
class Steward:
    engine: Engine
    actor: str

    async def _lock(
        self, conn: asyncpg.Connection, goldens: Iterable[str], records: Iterable[str] = ()
    ) -> None:
        keys = sorted(
            {blocking.golden_lock(g) for g in goldens} | {blocking.key_hash(f"src:{r}") for r in records}
        )
        await conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        try:
            await conn.execute(
                "SELECT pg_advisory_xact_lock(k)"
                " FROM (SELECT k FROM unnest($1::bigint[]) AS k ORDER BY k) AS s",
                keys,
            )
        except (asyncpg.LockNotAvailableError, asyncpg.DeadlockDetectedError):
            raise FhirError(
                Category.BUSY, "The resident is being changed by another request; retry shortly"
            ) from None

    async def _record(self, conn: asyncpg.Connection, patient_id: str) -> store.Stored:
        found = (await store.records(conn, [patient_id])).get(patient_id)
        if found is None or found.golden_id is None:
            golden = await conn.fetchval("SELECT 1 FROM mpi_golden WHERE golden_id = $1", patient_id)
            hint = " (it is a resident; name one of its source records)" if golden else ""
            raise FhirError(Category.NOT_FOUND, f"Patient/{patient_id} is not a linked source record{hint}")
        return found

    async def _active(self, conn: asyncpg.Connection, golden_id: str) -> None:
        state = (await residents.statuses(conn, [golden_id])).get(golden_id)
        if state is None:
            raise FhirError(Category.NOT_FOUND, f"Patient/{golden_id} is not a resident of the patient index")
        if state[0] != "active":
            raise FhirError(
                Category.CONFLICT,
                f"Resident Patient/{golden_id} is {state[0]}"
                + (f" into Patient/{state[1]}" if state[1] else ""),
            )

    async def _score(self, conn: asyncpg.Connection, record: store.Stored, golden_id: str) -> float | None:
        sources = (await store.sources_of(conn, [golden_id]))[golden_id]
        others = [s for s in sources if s.patient_id != record.patient_id]
        if not others:
            return None
        scorer = self.engine.scorer()
        return max(scorer.score(record.features, s.features).total for s in others)

    async def _check_distinct(self, conn: asyncpg.Connection, patient_ids: list[str], golden_id: str) -> None:
        forbidden = await store.forbidden_goldens(conn, patient_ids)
        if any(golden_id in f for f in forbidden.values()):
            raise FhirError(
                Category.CONFLICT,
                f"A steward marked these records as not the same person as Patient/{golden_id}",
                code="business-rule",
            )

    async def _finish(
        self, conn: asyncpg.Connection, events: list[links.Event], goldens: Iterable[str]
    ) -> list[int]:
        now = self.engine.clock()
        seqs = await links.record_events(conn, events, now)
        await residents.refresh(conn, self.engine.repository(conn, self.actor), sorted(set(goldens)), now)
        return seqs

    # -- decisions ------------------------------------------------------------------------------

    async def link(
        self, conn: asyncpg.Connection, patient_id: str, golden_id: str, reason: str | None
    ) -> dict[str, Any]:
        """Link source ``patient_id`` to resident ``golden_id`` (a manual link)."""
        async with conn.transaction():
            before = await self._record(conn, patient_id)
            await self._lock(conn, [golden_id, before.golden_id or golden_id], [patient_id])
            record = await self._record(conn, patient_id)
            old = record.golden_id
            if old is not None and old != before.golden_id:
                await self._lock(conn, [old])
            await self._active(conn, golden_id)
            await self._check_distinct(conn, [patient_id], golden_id)
            score = await self._score(conn, record, golden_id)
            now = self.engine.clock()
            await store.save_links(conn, [(patient_id, golden_id, "manual", True, score, None)], now)
            if old and old != golden_id and not (await store.source_counts(conn, [old])).get(old):
                await residents.set_status(conn, old, "merged", golden_id, now)
            await review.obsolete(conn, [patient_id], now)
            action = links.LINK if old == golden_id or old is None else links.RELINK
            event = links.Event(
                self.actor,
                action,
                patient_id,
                golden_id,
                old if old != golden_id else None,
                "manual",
                score,
                True,
                reason,
            )
            seqs = await self._finish(conn, [event], [golden_id, *([old] if old else [])])
            return {
                "event": seqs[0],
                "patient": patient_id,
                "resident": golden_id,
                "previous": old,
                "score": score,
            }

    async def attach(
        self,
        conn: asyncpg.Connection,
        patient_id: str,
        rid: int,
        resource: dict[str, Any],
        golden_id: str,
        reason: str,
    ) -> None:
        """Index a new source record and link it to ``golden_id`` by a manual decision."""
        async with conn.transaction():
            await self._lock(conn, [golden_id], [patient_id])
            await self._active(conn, golden_id)
            now = self.engine.clock()
            feats = from_patient(patient_id, resource)
            await store.save_features(conn, [(rid, feats)], now)
            await store.save_links(
                conn, [(patient_id, golden_id, "manual", True, None, "card-resolution")], now
            )
            event = links.Event(
                self.actor, links.LINK, patient_id, golden_id, None, "manual", None, True, reason
            )
            await self._finish(conn, [event], [golden_id])

    async def unlink(self, conn: asyncpg.Connection, patient_id: str, reason: str | None) -> dict[str, Any]:
        """Detach a source into a resident of its own, marked not the same person as the others."""
        async with conn.transaction():
            before = await self._record(conn, patient_id)
            await self._lock(conn, [before.golden_id or ""], [patient_id])
            record = await self._record(conn, patient_id)
            if record.golden_id != before.golden_id:
                raise FhirError(Category.BUSY, "The record was relinked meanwhile; retry")
            old = record.golden_id
            assert old is not None
            others = [
                s.patient_id for s in (await store.sources_of(conn, [old]))[old] if s.patient_id != patient_id
            ]
            if not others:
                raise FhirError(
                    Category.CONFLICT, f"Patient/{patient_id} is already the only record of its resident"
                )
            score = await self._score(conn, record, old)
            now = self.engine.clock()
            fresh = new_id()
            await residents.create(conn, [fresh], now)
            await store.save_links(conn, [(patient_id, fresh, "manual", True, None, None)], now)
            await _distinct(conn, [patient_id], others, self.actor, reason or "unlinked", now)
            await review.obsolete(conn, [patient_id], now)
            event = links.Event(
                self.actor,
                links.UNLINK,
                patient_id,
                fresh,
                old,
                "manual",
                score,
                True,
                reason,
                {"distinct_from": others},
            )
            seqs = await self._finish(conn, [event], [fresh, old])
            return {"event": seqs[0], "patient": patient_id, "resident": fresh, "previous": old}

    async def merge(
        self, conn: asyncpg.Connection, source: str, target: str, reason: str | None
    ) -> dict[str, Any]:
        """Merge resident ``source`` into resident ``target``; :meth:`unmerge` undoes it exactly."""
        if source == target:
            raise FhirError(Category.INCORRECT, "A resident cannot be merged into itself")
        async with conn.transaction():
            await self._lock(conn, [source, target])
            await self._active(conn, source)
            await self._active(conn, target)
            moved = (await store.sources_of(conn, [source]))[source]
            await self._check_distinct(conn, [s.patient_id for s in moved], target)
            snapshot = [
                {"patient_id": s.patient_id, "golden_id": s.golden_id, "grade": s.grade, "manual": s.manual,
                 "score": s.score, "rule": s.rule}
                for s in moved
            ]  # fmt: skip
            now = self.engine.clock()
            await store.save_links(
                conn, [(s.patient_id, target, "manual", True, s.score, None) for s in moved], now
            )
            await residents.set_status(conn, source, "merged", target, now)
            await conn.execute(
                "UPDATE mpi_review SET golden_id = $2 WHERE golden_id = $1 AND status = 'open'",
                source,
                target,
            )
            detail = {"from": source, "into": target, "sources": snapshot}
            event = links.Event(
                self.actor, links.MERGE, None, target, source, "manual", None, True, reason, detail
            )
            seqs = await self._finish(conn, [event], [source, target])
            return {
                "event": seqs[0],
                "resident": target,
                "merged": source,
                "moved": [s["patient_id"] for s in snapshot],
            }

    async def unmerge(self, conn: asyncpg.Connection, merged: str, reason: str | None) -> dict[str, Any]:
        """Undo the latest merge of resident ``merged``: its records return with their prior links."""
        async with conn.transaction():
            row = await conn.fetchrow(
                "SELECT seq, golden_id, detail FROM mpi_event"
                " WHERE action = 'merge' AND previous_golden_id = $1"
                " ORDER BY seq DESC LIMIT 1",
                merged,
            )
            if row is None:
                raise FhirError(Category.NOT_FOUND, f"Resident Patient/{merged} was never merged")
            target = row["golden_id"]
            await self._lock(conn, [merged, target])
            state = (await residents.statuses(conn, [merged])).get(merged)
            if state is None or state != ("merged", target):
                raise FhirError(
                    Category.CONFLICT, f"Patient/{merged} is not merged into Patient/{target} any more"
                )
            snapshot = orjson.loads(row["detail"])["sources"]
            current = {s.patient_id: s.golden_id for s in (await store.sources_of(conn, [target]))[target]}
            astray = [s["patient_id"] for s in snapshot if current.get(s["patient_id"]) != target]
            if astray:
                raise FhirError(
                    Category.CONFLICT,
                    f"Records {', '.join(astray)} have left Patient/{target} since the merge",
                )
            now = self.engine.clock()
            await store.save_links(
                conn,
                [(s["patient_id"], merged, s["grade"], s["manual"], s["score"], s["rule"]) for s in snapshot],
                now,
            )
            await residents.set_status(conn, merged, "active", None, now)
            detail = {"merge_event": row["seq"], "restored": snapshot}
            event = links.Event(
                self.actor, links.UNMERGE, None, merged, target, None, None, True, reason, detail
            )
            seqs = await self._finish(conn, [event], [merged, target])
            return {
                "event": seqs[0],
                "resident": merged,
                "from": target,
                "restored": [s["patient_id"] for s in snapshot],
            }

    async def distinct(self, conn: asyncpg.Connection, a: str, b: str, reason: str | None) -> dict[str, Any]:
        """Mark two records (or residents: all their records) as not the same person. When they
        share a resident now, ``b`` is detached into a resident of its own."""
        async with conn.transaction():
            ga, gb = await links.golden_of(conn, a), await links.golden_of(conn, b)
            if ga is None or gb is None:
                raise FhirError(
                    Category.NOT_FOUND, f"Patient/{a if ga is None else b} is not known to the patient index"
                )
            await self._lock(conn, [ga, gb], [a, b])
            side_a = await _records_of(conn, a, ga)
            side_b = await _records_of(conn, b, gb)
            if set(side_a) & set(side_b):
                raise FhirError(Category.INCORRECT, "A record cannot be distinct from itself")
            now = self.engine.clock()
            await _distinct(conn, side_a, side_b, self.actor, reason, now)
            events = [
                links.Event(
                    self.actor,
                    links.DISTINCT,
                    b,
                    gb,
                    ga,
                    "manual",
                    None,
                    True,
                    reason,
                    {"a": side_a, "b": side_b},
                )
            ]
            touched = [ga, gb]
            if ga == gb:
                fresh = new_id()
                await residents.create(conn, [fresh], now)
                await store.save_links(conn, [(p, fresh, "manual", True, None, None) for p in side_b], now)
                events.append(
                    links.Event(self.actor, links.UNLINK, b, fresh, ga, "manual", None, True, reason)
                )
                touched.append(fresh)
            seqs = await self._finish(conn, events, touched)
            return {"event": seqs[-1], "a": side_a, "b": side_b}

    async def resolve(
        self, conn: asyncpg.Connection, review_id: int, decision: str, target: str | None, reason: str | None
    ) -> dict[str, Any]:
        """Resolve a review item: ``link`` (the record to ``target`` or the best candidate),
        ``merge`` (the candidate resident into the record's), ``distinct`` (not the same person)."""
        row = await review.item(conn, review_id)
        if row is None:
            raise FhirError(Category.NOT_FOUND, f"Review item {review_id} is not known")
        if row["status"] != "open":
            raise FhirError(Category.CONFLICT, f"Review item {review_id} is {row['status']}")
        candidates = orjson.loads(row["candidates"])
        names = [c["golden_id"] for c in candidates]
        chosen = target or (names[0] if names else None)
        if chosen is None or chosen not in names:
            raise FhirError(
                Category.INCORRECT,
                f"target must be one of the candidates: {', '.join(names)}",
                expression=["target"],
            )
        pid = row["patient_id"]
        async with conn.transaction():
            if decision == "link":
                result = await self.link(conn, pid, chosen, reason)
            elif decision == "merge":
                own = await links.golden_of(conn, pid)
                if own is None:
                    raise FhirError(Category.CONFLICT, f"Patient/{pid} has no resident")
                result = await self.merge(conn, chosen, own, reason)
            elif decision == "distinct":
                result = {}
                for name in [chosen] if target else names:
                    result = await self.distinct(conn, pid, name, reason)
            else:
                raise FhirError(
                    Category.INCORRECT, "decision must be link, merge or distinct", expression=["decision"]
                )
            now = self.engine.clock()
            await review.resolve(conn, review_id, decision, self.actor, reason, now)
            event = links.Event(
                self.actor,
                links.REVIEW_RESOLVE,
                pid,
                chosen,
                None,
                None,
                None,
                True,
                reason,
                {"review": review_id, "decision": decision},
            )
            await links.record_events(conn, [event], now)
            return {"review": review_id, "decision": decision, **result}


async def _records_of(conn: asyncpg.Connection, patient_id: str, golden_id: str) -> list[str]:
    """A source record itself, or every source of a resident."""
    if patient_id != golden_id:
        return [patient_id]
    return [s.patient_id for s in (await store.sources_of(conn, [golden_id]))[golden_id]]


async def _distinct(
    conn: asyncpg.Connection, side_a: list[str], side_b: list[str], actor: str, reason: str | None, now: Any
) -> None:
    pairs = sorted({(min(x, y), max(x, y)) for x in side_a for y in side_b if x != y})
    if pairs:
        await conn.execute(
            "INSERT INTO mpi_distinct (a, b, actor, reason, at) SELECT a, b, $3, $4, $5"
            " FROM unnest($1::text[], $2::text[]) AS t(a, b) ON CONFLICT DO NOTHING",
            [p[0] for p in pairs],
            [p[1] for p in pairs],
            actor,
            reason,
            now,
        )
