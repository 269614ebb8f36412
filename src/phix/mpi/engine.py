"""The linker: match written Patients against the index and link each to a resident.

:meth:`Engine.link` handles a batch of writes (one for a single request, hundreds for the worker
or a bulk load) inside the caller's transaction:

1. normalise each record (:mod:`phix.mpi.features`) and store its features, blocking keys and
   identifiers;
2. take transaction-level advisory locks on every blocking key of every record, on the record
   itself and on the residents it may join, *without waiting*: a record whose locks are held by
   another transaction is deferred to ``mpi_pending`` and linked by the worker moments later.
   Two hospitals registering the same person at once therefore serialise on the shared keys and
   cannot create two residents, and no transaction ever waits on another's advisory lock, so
   linking cannot deadlock;
3. read candidates through the blocking index, score them (:mod:`phix.mpi.scoring`) and decide
   (:mod:`phix.mpi.decision`): certain -> link; probable/possible -> a resident of its own plus a
   review item; none -> a new resident. Manual links are never changed;
4. write the links, history events and review items, and rebuild the golden records touched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from phix.mpi import blocking, links, residents, review, store
from phix.mpi.config import MatchModel, default_model, load_model
from phix.mpi.decision import Candidate, best_per_golden, decide
from phix.mpi.features import Features, from_patient
from phix.mpi.scoring import Scorer
from phix.storage.context import RequestContext
from phix.storage.repository import Clock, Repository, WriteListener, new_id, utc_now

ENGINE_ACTOR = "mpi-engine"


@dataclass(slots=True)
class Item:
    patient_id: str
    rid: int
    resource: dict[str, Any] | None  # None: the Patient was deleted


@dataclass(slots=True)
class Outcome:
    patient_id: str
    status: str  # linked | new | kept | relinked | deleted | deferred
    golden_id: str | None = None
    grade: str | None = None
    score: float | None = None
    rule: str | None = None


@dataclass(slots=True)
class _State:
    """What the batch knows of records it has processed so far (overlaying the database)."""

    golden: dict[str, str | None] = field(default_factory=dict)
    features: dict[str, Features] = field(default_factory=dict)
    by_key: dict[int, list[str]] = field(default_factory=dict)
    rows: dict[str, tuple[str, str, bool, float | None, str | None]] = field(default_factory=dict)
    events: list[links.Event] = field(default_factory=list)
    reviews: list[review.NewReview] = field(default_factory=list)
    touched: set[str] = field(default_factory=set)
    created: list[str] = field(default_factory=list)
    merged: dict[str, str] = field(default_factory=dict)  # retired provisional resident -> survivor
    joined: dict[str, str] = field(default_factory=dict)  # resident joined by the engine -> survivor
    moved: list[tuple[str, str]] = field(default_factory=list)  # (loser, survivor) for open reviews
    moved_sources: dict[str, store.Stored] = field(default_factory=dict)  # stored records joined

    def resolve(self, golden_id: str) -> str:
        """The resident a resident joined in this batch now is (itself when not joined)."""
        while golden_id in self.joined:
            golden_id = self.joined[golden_id]
        return golden_id


class Engine:
    def __init__(
        self,
        listeners: Callable[[], Sequence[WriteListener]] = lambda: (),
        clock: Clock = utc_now,
        model: MatchModel | None = None,
    ) -> None:
        self.listeners = listeners  # listeners for golden-record writes (never the index itself)
        self.clock = clock
        self.model = model or default_model()
        self.names = store.NameCounts()
        self._hot: set[int] = set()  # blocking keys shared by too many records (never read again)

    def common_keys(self) -> set[int]:
        """Blocking keys found shared by more than ``blocking.max_per_key`` records: the linker
        skips them (a frequency cap). Remembered per process (keys only grow more common)."""
        if len(self._hot) > 1_000_000:
            self._hot.clear()
        return self._hot

    async def reload(self, conn: asyncpg.Connection) -> MatchModel:
        self.model = await load_model(conn)
        return self.model

    def repository(self, conn: asyncpg.Connection, actor: str) -> Repository:
        return Repository(conn, RequestContext(client=actor), list(self.listeners()), self.clock)

    def scorer(self) -> Scorer:
        nf = self.model.name_frequency
        names = self.names

        def share(key: str) -> float:
            return (names.count(key) + nf.pseudo_count * nf.default_frequency) / (
                names.residents + nf.pseudo_count
            )

        def others(key: str) -> float:
            return (max(names.count(key) - 1, 0) + nf.pseudo_count * nf.default_frequency) / (
                names.residents + nf.pseudo_count
            )

        return Scorer(self.model, share, names.total, others)

    async def link(
        self, conn: asyncpg.Connection, items: Sequence[Item], actor: str = ENGINE_ACTOR
    ) -> list[Outcome]:
        async with conn.transaction():
            return await self._link(conn, items, actor)

    async def _link(self, conn: asyncpg.Connection, items: Sequence[Item], actor: str) -> list[Outcome]:
        now = self.clock()
        items = list({i.patient_id: i for i in items}.values())  # the last write of a record wins
        existing = await store.records(conn, [i.patient_id for i in items])
        feats = {
            i.patient_id: from_patient(i.patient_id, i.resource) for i in items if i.resource is not None
        }
        wanted: dict[str, set[int]] = {}
        for i in items:
            old = existing.get(i.patient_id)
            keys = (
                set(blocking.lock_keys(feats[i.patient_id]))
                if i.patient_id in feats
                else {blocking.key_hash(f"src:{i.patient_id}")}
            )
            if old is not None and old.golden_id:
                keys.add(blocking.golden_lock(old.golden_id))
            wanted[i.patient_id] = keys
        failed = await store.try_locks(conn, set().union(*wanted.values()))
        deferred = {pid for pid, keys in wanted.items() if keys & failed}
        # Under our locks nobody can relink these records; one relinked just before is retried.
        existing = await store.records(conn, [i.patient_id for i in items if i.patient_id not in deferred])
        for pid, stored in existing.items():
            if stored.golden_id and blocking.golden_lock(stored.golden_id) not in wanted[pid]:
                deferred.add(pid)
        mine = [
            (i.rid, feats[i.patient_id])
            for i in items
            if i.patient_id in feats and i.patient_id not in deferred
        ]
        # Records the index knows get their features now; new ones are inserted with their link
        # at the end (one write of the row instead of an insert and an update).
        known = {s.rid for s in existing.values()}
        await store.save_features(conn, [(rid, f) for rid, f in mine if rid in known], now)
        fresh = [(rid, f) for rid, f in mine if rid not in known]
        st = _State()
        outcomes: dict[str, Outcome] = {}
        for i in items:
            if i.resource is None and i.patient_id not in deferred:
                outcomes[i.patient_id] = await self._delete(conn, i, existing.get(i.patient_id), st, actor)
        ready = [i for i in items if i.patient_id in feats and i.patient_id not in deferred]
        if ready:
            await self._match_all(conn, ready, feats, existing, st, deferred, outcomes, actor)
        await self._write(conn, st, actor, now, fresh)
        processed = [pid for pid in outcomes if pid not in deferred]
        await conn.execute("DELETE FROM mpi_pending WHERE patient_id = ANY($1::text[])", processed)
        if deferred:
            await defer(conn, sorted(deferred))
        for pid in deferred:
            outcomes[pid] = Outcome(pid, "deferred")
        return [outcomes[i.patient_id] for i in items]

    async def _delete(
        self, conn: asyncpg.Connection, item: Item, old: store.Stored | None, st: _State, actor: str
    ) -> Outcome:
        await store.delete_records(conn, [item.rid])
        await review.obsolete(conn, [item.patient_id], self.clock())
        if old is not None and old.golden_id:
            st.touched.add(old.golden_id)
            st.events.append(
                links.Event(
                    actor, links.DELETE, item.patient_id, None, old.golden_id, reason="source record deleted"
                )
            )
        return Outcome(item.patient_id, "deleted", old.golden_id if old else None)

    async def _match_all(
        self,
        conn: asyncpg.Connection,
        ready: list[Item],
        feats: dict[str, Features],
        existing: dict[str, store.Stored],
        st: _State,
        deferred: set[str],
        outcomes: dict[str, Outcome],
        actor: str,
    ) -> None:
        model = self.model
        keys = {i.patient_id: feats[i.patient_id].hashes for i in ready}
        hot = self.common_keys()
        rows = await store.candidates(
            conn, sorted(set().union(*keys.values())), model.blocking.max_per_key, hot
        )
        db_by_key: dict[int, list[tuple[str, str, Features]]] = {}
        for key, pid, gid, f in rows:
            db_by_key.setdefault(key, []).append((pid, gid, f))
        forbidden = await store.forbidden_goldens(conn, [i.patient_id for i in ready])
        goldens = {gid for _, _, gid, _ in rows} | {s.golden_id for s in existing.values() if s.golden_id}
        failed = await store.try_locks(conn, [blocking.golden_lock(g) for g in goldens])
        locked_out = {g for g in goldens if blocking.golden_lock(g) in failed}
        status = await residents.statuses(conn, sorted(goldens))
        counts = await store.source_counts(
            conn, sorted({s.golden_id for s in existing.values() if s.golden_id})
        )
        names = {f.name.key for f in feats.values() if f.name and f.name.readings}
        await self.names.prefetch(conn, names)
        scorer = self.scorer()
        for item in ready:
            pid = item.patient_id
            f = feats[pid]
            pool: dict[str, tuple[str | None, Features]] = {}
            hits: dict[str, int] = {}  # blocking keys each candidate shares with the record
            for key in keys[pid]:
                if key in hot:
                    continue
                mine = st.by_key.get(key, ())
                if len(mine) + len(db_by_key.get(key, ())) > model.blocking.max_per_key:
                    hot.add(key)  # grew too common within this batch
                    continue
                for cpid, gid, cf in db_by_key.get(key, ()):
                    pool.setdefault(cpid, (gid, cf))
                    hits[cpid] = hits.get(cpid, 0) + 1
                for cpid in mine:
                    pool[cpid] = (st.golden.get(cpid), st.features[cpid])
                    hits[cpid] = hits.get(cpid, 0) + 1
            for cpid in list(pool):
                if cpid in st.golden:  # processed earlier in this batch: its current state
                    pool[cpid] = (st.golden[cpid], st.features[cpid])
                elif st.joined:
                    g0, cf0 = pool[cpid]
                    pool[cpid] = (st.resolve(g0) if g0 else g0, cf0)
            pool.pop(pid, None)
            live = {
                c: (g, cf)
                for c, (g, cf) in pool.items()
                if g and status.get(g, ("active", None))[0] == "active"
            }
            if any(g in locked_out for g, _ in live.values()):
                deferred.add(pid)
                continue
            ranked = list(live.items())
            if len(ranked) > model.blocking.max_candidates:  # those sharing most keys first
                ranked.sort(key=lambda entry: -hits.get(entry[0], 0))
            scored = [
                (g, c, scorer.score(f, cf)) for c, (g, cf) in ranked[: model.blocking.max_candidates] if g
            ]
            cands = best_per_golden(scored, forbidden.get(pid, set()))
            if sum(c.score.grade == "certain" for c in cands) > 1 and (
                existing.get(pid) is None or not existing[pid].manual
            ):
                cands = await self._join(conn, pid, cands, st, scorer, actor)
            outcomes[pid] = self._apply(item, f, cands, existing.get(pid), counts, st, actor)
            if f.name and f.name.readings and existing.get(pid) is None:
                self.names.add(f.name.key, resident=outcomes[pid].status == "new")
            st.features[pid] = f
            for key in keys[pid]:
                st.by_key.setdefault(key, []).append(pid)

    async def _join(
        self,
        conn: asyncpg.Connection,
        pid: str,
        cands: list[Candidate],
        st: _State,
        scorer: Scorer,
        actor: str,
    ) -> list[Candidate]:
        """A record certain for several residents: join those residents into the best one when
        the engine alone made them (no manual link or decision on either, ever), no strong
        identifier conflicts (two different valid resident IDs, different cards), no "not the same
        person" mark between their records, and their records resemble each other (the best pair
        across them grades at least possible). Each join is a ``merge`` event by the engine that
        ``$mpi-unmerge`` reverses. Returns the candidates left (joined residents dropped)."""
        certain = [c for c in cands if c.score.grade == "certain"]
        survivor = certain[0].golden_id
        members = await self._members(conn, [c.golden_id for c in certain], st)
        kept = [c for c in cands if c not in certain[1:]]
        for cand in certain[1:]:
            loser = cand.golden_id
            if not await self._joinable(conn, members[survivor], members[loser], scorer):
                kept.append(cand)
                continue
            snapshot = []
            for m in members[loser]:
                grade, score, rule = m.grade or "certain", m.score, m.rule
                snapshot.append(
                    {"patient_id": m.patient_id, "golden_id": loser, "grade": grade, "manual": False,
                     "score": score, "rule": rule}
                )  # fmt: skip
                st.rows[m.patient_id] = (survivor, grade, False, score, rule)
                if m.patient_id in st.golden:
                    st.golden[m.patient_id] = survivor
                else:
                    st.moved_sources[m.patient_id] = m
            members[survivor] += members.pop(loser)
            st.joined[loser] = survivor
            st.merged[loser] = survivor
            st.moved.append((loser, survivor))
            st.touched.update((loser, survivor))
            reason = (
                f"record {pid} matches both residents with certainty"
                f" ({certain[0].score.total:.1f} and {cand.score.total:.1f} bits): joined by the engine"
            )
            detail = {"from": loser, "into": survivor, "sources": snapshot, "bridge": pid}
            st.events.append(
                links.Event(actor, links.MERGE, None, survivor, loser, "certain", cand.score.total, False,
                            reason, detail)
            )  # fmt: skip
        return sorted(kept, key=Candidate.sort_key)

    async def _members(
        self, conn: asyncpg.Connection, golden_ids: list[str], st: _State
    ) -> dict[str, list[store.Stored]]:
        """Current source records of residents, this batch's links overlaying the stored ones."""
        stored = await store.sources_of(conn, [g for g in golden_ids if g not in st.created])
        found: dict[str, store.Stored] = {}
        for sources in stored.values():
            for s in sources:
                found[s.patient_id] = s
        found |= st.moved_sources
        for cpid, g in st.golden.items():
            row = st.rows.get(cpid)
            if g is not None and cpid not in found:
                found[cpid] = store.Stored(
                    cpid, 0, g, row[1] if row else None, bool(row and row[2]), row[3] if row else None,
                    row[4] if row else None, st.features[cpid],
                )  # fmt: skip
        out: dict[str, list[store.Stored]] = {g: [] for g in golden_ids}
        for cpid, s in found.items():
            current = st.golden.get(cpid) or (st.rows[cpid][0] if cpid in st.rows else s.golden_id)
            if current in out:
                out[current].append(s)
        return out

    async def _joinable(
        self,
        conn: asyncpg.Connection,
        a: list[store.Stored],
        b: list[store.Stored],
        scorer: Scorer,
    ) -> bool:
        if not a or not b or any(s.manual for s in (*a, *b)):
            return False
        for x in a:
            for y in b:
                if strong_conflict(x.features, y.features):
                    return False
        best = max(scorer.score(x.features, y.features).total for x in a for y in b)
        if best < self.model.thresholds.possible + scorer.offset:
            return False
        ids_a, ids_b = [s.patient_id for s in a], [s.patient_id for s in b]
        goldens = sorted({s.golden_id for s in (*a, *b) if s.golden_id})
        blocked = await conn.fetchval(
            """
            SELECT EXISTS (SELECT 1 FROM mpi_distinct
                           WHERE (a = ANY($1::text[]) AND b = ANY($2::text[]))
                              OR (a = ANY($2::text[]) AND b = ANY($1::text[])))
                OR EXISTS (SELECT 1 FROM mpi_event WHERE manual
                           AND (golden_id = ANY($3::text[]) OR previous_golden_id = ANY($3::text[])))
            """,
            ids_a,
            ids_b,
            goldens,
        )
        return not blocked

    def _apply(
        self,
        item: Item,
        f: Features,
        cands: list[Candidate],
        old: store.Stored | None,
        counts: dict[str, int],
        st: _State,
        actor: str,
    ) -> Outcome:
        pid = item.patient_id
        decision = decide(cands)
        old_golden = old.golden_id if old else None
        if old is not None and old.manual and old_golden:
            st.golden[pid] = old_golden
            st.touched.add(old_golden)
            return Outcome(pid, "kept", old_golden, old.grade, old.score, "manual")
        target: str | None = decision.golden_id if decision.action == "link" else None
        if old_golden and _stays(old_golden, target, cands, counts.get(old_golden, 1) - 1):
            target = old_golden
        self._review(pid, decision, target, cands, st)
        if target == old_golden and old_golden:
            best = next((c for c in cands if c.golden_id == old_golden), None)
            grade = best.score.grade if best else (old.grade if old and old.grade else "none")
            score = best.score.total if best else None
            st.rows[pid] = (old_golden, grade, False, score, best.score.rule if best else None)
            st.golden[pid] = old_golden
            st.touched.add(old_golden)
            return Outcome(pid, "kept", old_golden, grade, score)
        if target is None:
            target = new_id()
            st.created.append(target)
            action, status, grade = links.NEW_RESIDENT, "new", decision.grade
            score, rule, reason = decision.score, None, _new_reason(decision.grade)
        else:
            action, status, grade = links.LINK, "linked", "certain"
            score, rule, reason = decision.score, decision.rule, f"certain match ({decision.rule or 'score'})"
        if old_golden:
            action, status = links.RELINK, "relinked"
            if counts.get(old_golden, 1) <= 1:
                st.merged[old_golden] = target
            st.touched.add(old_golden)
        st.rows[pid] = (target, grade, False, score, rule)
        st.golden[pid] = target
        st.touched.add(target)
        st.events.append(links.Event(actor, action, pid, target, old_golden, grade, score, False, reason))
        return Outcome(pid, status, target, grade, score, rule)

    def _review(
        self, pid: str, decision: Any, target: str | None, cands: list[Candidate], st: _State
    ) -> None:
        if not decision.review:
            return
        listed = [c for c in decision.review if c.golden_id != target]
        if listed:
            st.reviews.append(
                review.NewReview(decision.review_kind or "possible-match", pid, listed, self.model)
            )

    async def _write(
        self,
        conn: asyncpg.Connection,
        st: _State,
        actor: str,
        now: datetime,
        fresh: Sequence[tuple[int, Features]] = (),
    ) -> None:
        await residents.create(conn, st.created, now)
        new_links = {f.patient_id: st.rows[f.patient_id] for _, f in fresh if f.patient_id in st.rows}
        await store.save_features(conn, fresh, now, replace=(), links=new_links)
        await store.save_links(
            conn, [(pid, *link) for pid, link in st.rows.items() if pid not in new_links], now
        )
        for old, survivor in st.merged.items():
            await residents.set_status(conn, old, "merged", st.resolve(survivor), now)
        processed = list(st.golden)
        await review.obsolete(
            conn, [p for p in processed if p not in {r.patient_id for r in st.reviews}], now
        )
        for r in st.reviews:
            r.golden_id = st.golden.get(r.patient_id)
        opened = await review.open_items(conn, st.reviews, now)
        for loser, survivor in st.moved:
            await review.joined(conn, loser, st.resolve(survivor), now)
        st.events += [
            links.Event(
                actor,
                links.REVIEW_OPEN,
                r.patient_id,
                r.golden_id,
                None,
                r.grade,
                r.best_score,
                detail={"review": rid, "kind": r.kind},
            )
            for r, rid in zip(st.reviews, opened, strict=True)
        ]
        await links.record_events(conn, st.events, now)
        await residents.refresh(conn, self.repository(conn, actor), sorted(st.touched), now, st.features)


def _stays(current: str, target: str | None, cands: list[Candidate], others: int) -> bool:
    """Whether an updated record stays with its resident: yes when that is still the decision,
    when it still matches its resident's other records with certainty (even if it now also
    matches another resident: that becomes a review item), or when nothing else is certain and
    it is alone or still resembles its resident."""
    if target == current:
        return True
    mine = next((c for c in cands if c.golden_id == current), None)
    if others and mine is not None and mine.score.grade == "certain":
        return True
    return target is None and (not others or (mine is not None and mine.score.grade != "none"))


def strong_conflict(a: Features, b: Features) -> bool:
    """Strong identifiers that say two records are different people: two different valid
    resident IDs, or citizen (virtual) cards on both sides without one in common."""
    if a.id18 and b.id18 and a.id18 != b.id18:
        return True
    if a.cards and b.cards and not set(a.cards) & set(b.cards):
        return True
    return bool(a.vcards and b.vcards and not set(a.vcards) & set(b.vcards))


def _new_reason(grade: str) -> str:
    if grade in ("probable", "possible"):
        return f"no certain match; best candidate {grade}: queued for review"
    return "no matching resident"


async def defer(conn: asyncpg.Connection, patient_ids: Sequence[str], error: str | None = None) -> None:
    """Queue records for the linker worker (retry with back-off when already queued)."""
    await conn.execute(
        """
        INSERT INTO mpi_pending (patient_id, last_error) SELECT p, $2 FROM unnest($1::text[]) AS p
        ON CONFLICT (patient_id) DO UPDATE SET attempts = mpi_pending.attempts + 1,
            not_before = now()
                + least(interval '50 ms' * power(2, least(mpi_pending.attempts, 8)), interval '10 s'),
            last_error = EXCLUDED.last_error
        """,
        list(patient_ids),
        error,
    )
