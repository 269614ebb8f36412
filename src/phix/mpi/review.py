"""The review queue: records the engine would not link on its own, with the scored candidates.

Kinds: ``possible-match`` (a record got a resident of its own, but probable or possible matches
exist) and ``possible-duplicate`` (a record matched several residents with certainty: they may be
one person). Items are rendered over FHIR as ``Task`` resources (see :func:`as_task`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson

from phix.identity import systems
from phix.mpi.config import MatchModel
from phix.mpi.decision import Candidate

TASK_CODE_SYSTEM = f"{systems.CODESYSTEM_BASE}/mpi-review"
CANDIDATE_URL = "https://fhir.putian.gov.cn/StructureDefinition/mpi-candidate"


def candidate_json(c: Candidate, model: MatchModel) -> dict[str, Any]:
    s = c.score
    return {
        "golden_id": c.golden_id,
        "patient_id": c.source_id,
        "score": round(s.total, 3),
        "grade": s.grade,
        "probability": round(s.probability(model), 6),
        "rule": s.rule,
        "levels": s.levels,
        "weights": {k: round(v, 3) for k, v in s.weights.items()},
        "agreed": s.agreed,
        "disagreed": s.disagreed,
        "notes": s.notes,
    }


@dataclass(slots=True)
class NewReview:
    kind: str
    patient_id: str
    candidates: list[Candidate]
    model: MatchModel
    golden_id: str | None = None

    @property
    def best_score(self) -> float | None:
        return self.candidates[0].score.total if self.candidates else None

    @property
    def grade(self) -> str | None:
        return self.candidates[0].score.grade if self.candidates else None

    def candidates_json(self) -> list[dict[str, Any]]:
        return [candidate_json(c, self.model) for c in self.candidates]


async def open_items(conn: asyncpg.Connection, items: Sequence[NewReview], now: datetime) -> list[int]:
    """Open (or refresh) review items; one open item per record and kind. Returns their ids."""
    if not items:
        return []
    rows = await conn.fetch(
        """
        INSERT INTO mpi_review (kind, patient_id, golden_id, best_score, candidates, created_at)
        SELECT t.kind, t.patient_id, t.golden_id, t.best, t.candidates, $6
        FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::jsonb[])
             AS t(kind, patient_id, golden_id, best, candidates)
        ON CONFLICT (patient_id, kind) WHERE status = 'open' DO UPDATE
            SET golden_id = EXCLUDED.golden_id, best_score = EXCLUDED.best_score,
                candidates = EXCLUDED.candidates
        RETURNING id
        """,
        [r.kind for r in items],
        [r.patient_id for r in items],
        [r.golden_id for r in items],
        [r.best_score for r in items],
        [orjson.dumps(r.candidates_json()).decode() for r in items],
        now,
    )
    return [r["id"] for r in rows]


async def obsolete(conn: asyncpg.Connection, patient_ids: Sequence[str], now: datetime) -> None:
    """Close open items of records the engine has since decided on again."""
    if patient_ids:
        await conn.execute(
            "UPDATE mpi_review SET status = 'obsolete', resolved_at = $2, resolved_by = 'mpi-engine',"
            " reason = 'superseded by a later match of the record'"
            " WHERE patient_id = ANY($1::text[]) AND status = 'open'",
            list(patient_ids),
            now,
        )


async def joined(conn: asyncpg.Connection, loser: str, survivor: str, now: datetime) -> None:
    """Resident ``loser`` was joined into ``survivor``: open items point at the survivor, and items
    whose candidates were all among the two residents are settled (closed as obsolete)."""
    await conn.execute(
        "UPDATE mpi_review SET golden_id = $2 WHERE golden_id = $1 AND status = 'open'", loser, survivor
    )
    await conn.execute(
        "UPDATE mpi_review SET status = 'obsolete', resolved_at = $3, resolved_by = 'mpi-engine',"
        " reason = 'the residents were joined by the engine'"
        " WHERE status = 'open' AND golden_id = $2 AND NOT EXISTS ("
        "   SELECT 1 FROM jsonb_array_elements(candidates) AS c"
        "   WHERE c ->> 'golden_id' <> ALL (ARRAY[$1, $2]))",
        loser,
        survivor,
        now,
    )


async def items(conn: asyncpg.Connection, status: str | None, after: int, limit: int) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "SELECT * FROM mpi_review WHERE ($1::text IS NULL OR status = $1) AND id > $2"
            " ORDER BY id LIMIT $3",
            status,
            after,
            limit,
        )
    )


async def item(conn: asyncpg.Connection, review_id: int, lock: bool = False) -> asyncpg.Record | None:
    suffix = " FOR UPDATE" if lock else ""
    row: asyncpg.Record | None = await conn.fetchrow(
        f"SELECT * FROM mpi_review WHERE id = $1{suffix}", review_id
    )
    return row


async def resolve(
    conn: asyncpg.Connection, review_id: int, decision: str, actor: str, reason: str | None, now: datetime
) -> None:
    await conn.execute(
        "UPDATE mpi_review SET status = 'resolved', decision = $2, resolved_by = $3, reason = $4,"
        " resolved_at = $5"
        " WHERE id = $1",
        review_id,
        decision,
        actor,
        reason,
        now,
    )


_TASK_STATUS = {"open": "requested", "resolved": "completed", "obsolete": "cancelled"}


def _ext(url: str, **values: Any) -> dict[str, Any]:
    return {"url": url, **values}


def as_task(row: asyncpg.Record) -> dict[str, Any]:
    """A review item as a FHIR Task: focus = the record, for = its resident, one input per candidate
    (valueReference = the candidate resident; extensions carry score, grade and the field levels)."""
    candidates = (
        orjson.loads(row["candidates"]) if isinstance(row["candidates"], str | bytes) else row["candidates"]
    )
    inputs = []
    for c in candidates:
        fields = [_ext("agreed", valueString=f) for f in c["agreed"]] + [
            _ext("disagreed", valueString=f) for f in c["disagreed"]
        ]
        fields += [_ext("level", valueString=f"{k}={v}") for k, v in c["levels"].items()]
        inputs.append(
            {
                "extension": [
                    {
                        "url": CANDIDATE_URL,
                        "extension": [
                            _ext("score", valueDecimal=c["score"]),
                            _ext("grade", valueCode=c["grade"]),
                            _ext("probability", valueDecimal=c["probability"]),
                            _ext("source", valueReference={"reference": f"Patient/{c['patient_id']}"}),
                            *([_ext("rule", valueString=c["rule"])] if c.get("rule") else []),
                            *fields,
                        ],
                    }
                ],
                "type": {"coding": [{"system": TASK_CODE_SYSTEM, "code": "candidate"}]},
                "valueReference": {"reference": f"Patient/{c['golden_id']}"},
            }
        )
    task: dict[str, Any] = {
        "resourceType": "Task",
        "id": f"mpi-review-{row['id']}",
        "status": _TASK_STATUS.get(row["status"], "requested"),
        "intent": "proposal",
        "code": {"coding": [{"system": TASK_CODE_SYSTEM, "code": row["kind"]}]},
        "focus": {"reference": f"Patient/{row['patient_id']}"},
        "authoredOn": row["created_at"].isoformat(),
        "input": inputs,
    }
    if row["golden_id"]:
        task["for"] = {"reference": f"Patient/{row['golden_id']}"}
    if row["resolved_at"] is not None:
        task["lastModified"] = row["resolved_at"].isoformat()
        task["output"] = [
            {
                "type": {"coding": [{"system": TASK_CODE_SYSTEM, "code": "decision"}]},
                "valueString": f"{row['decision'] or row['status']} by {row['resolved_by']}: "
                f"{row['reason'] or ''}".strip(),
            }
        ]
    return task
