"""Plugs the patient index into the app: the write listener, the linker worker, the routes and
the ``$everything`` resident expansion (``app.state.resident_patients``)."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI

from phix.mpi import links
from phix.mpi.engine import Engine
from phix.mpi.linkage import LinkWorker, MpiListener
from phix.mpi.operations import router as router
from phix.mpi.search_expansion import expand_residents
from phix.storage.repository import WriteListener


async def startup(app: FastAPI) -> None:
    state = app.state

    def golden_listeners() -> Sequence[WriteListener]:
        return [li for li in state.listeners if not isinstance(li, MpiListener)]

    engine = Engine(golden_listeners, state.clock)
    async with state.db.pool.acquire() as conn:
        await engine.reload(conn)
    state.mpi = engine
    state.listeners.append(MpiListener(engine, state.settings.mpi.linking))
    state.resident_patients = links.resident_patients
    state.source_patient_ids = links.source_patient_ids
    state.search_expanders = [*getattr(state, "search_expanders", []), expand_residents]
    worker = LinkWorker(state.db.pool, engine)
    worker.start()
    state.mpi_worker = worker


async def shutdown(app: FastAPI) -> None:
    worker = getattr(app.state, "mpi_worker", None)
    if worker is not None:
        await worker.stop()
