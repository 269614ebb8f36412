"""The teleconsultation Task state machine, enforced on every write of a consult Task.

::

    requested --$accept--> accepted --$start--> in-progress --$complete--> completed
        |                     |                      |
        +--$reject--> rejected <--$reject------------+ (not from in-progress)
        +--$cancel--> cancelled (from any open state)
    $reassign: any open state, or rejected -> requested with another owner

``completed`` and ``cancelled`` are final. An owner change is a reassignment and must return the
Task to ``requested`` (the new reader accepts it anew); assigning an unassigned ``requested``
Task keeps it ``requested``. ``accepted`` and ``in-progress`` need an owner; ``completed`` needs
the DiagnosticReport in ``Task.output``. Anything else is a 409 with an OperationOutcome.
"""

from __future__ import annotations

from dataclasses import dataclass

from phix.errors import Category, FhirError

OPEN = frozenset({"requested", "accepted", "in-progress"})
FINAL = frozenset({"completed", "cancelled"})

TRANSITIONS: dict[str, frozenset[str]] = {
    "requested": frozenset({"accepted", "rejected", "cancelled"}),
    "accepted": frozenset({"in-progress", "rejected", "cancelled"}),
    "in-progress": frozenset({"completed", "cancelled"}),
    "rejected": frozenset(),
    "completed": frozenset(),
    "cancelled": frozenset(),
}
REASSIGNABLE = OPEN | {"rejected"}

# operation name -> the status it moves the Task to
OPERATIONS: dict[str, str] = {
    "accept": "accepted",
    "start": "in-progress",
    "complete": "completed",
    "reject": "rejected",
    "cancel": "cancelled",
    "reassign": "requested",
}


@dataclass(frozen=True)
class State:
    status: str
    owner: str | None  # PractitionerRole id


def _allowed(status: str) -> str:
    targets = sorted(TRANSITIONS.get(status, frozenset()))
    if status in REASSIGNABLE:
        targets.append("requested (reassignment to another reader)")
    return ", ".join(targets) or "none (final state)"


def _conflict(task_id: str, message: str, path: str = "Task.status") -> FhirError:
    return FhirError(Category.CONFLICT, f"Task/{task_id}: {message}", expression=[path], code="business-rule")


def check(task_id: str, before: State | None, after: State, *, has_report: bool) -> str:
    """Check one write; return its kind: create, update, assign, reassign or transition."""
    if after.status not in TRANSITIONS:
        raise _conflict(
            task_id, f"status '{after.status}' is not part of the teleconsultation workflow ({_states()})"
        )
    if after.status in {"accepted", "in-progress", "completed"} and after.owner is None:
        raise _conflict(task_id, f"a Task without an owner cannot be {after.status}", "Task.owner")
    if after.status == "completed" and not has_report:
        raise _conflict(
            task_id, "completion needs the DiagnosticReport in Task.output (use $complete)", "Task.output"
        )
    if before is None:
        if after.status != "requested":
            raise _conflict(task_id, f"a new teleconsultation Task starts as requested, not {after.status}")
        return "create"
    owner_changed = before.owner != after.owner
    if owner_changed:
        if before.owner is None and before.status == "requested" and after.status == "requested":
            return "assign"
        if after.status != "requested" or before.status not in REASSIGNABLE:
            raise _conflict(
                task_id,
                f"invalid reassignment from {before.status} to {after.status}: a new owner returns "
                f"the Task to requested, from {', '.join(sorted(REASSIGNABLE))} only",
                "Task.owner",
            )
        return "reassign"
    if before.status == after.status:
        return "update"
    if after.status not in TRANSITIONS[before.status]:
        raise _conflict(
            task_id,
            f"invalid transition {before.status} -> {after.status}; allowed from {before.status}: "
            f"{_allowed(before.status)}",
        )
    return "transition"


def _states() -> str:
    return ", ".join(TRANSITIONS)
