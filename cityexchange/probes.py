"""`/healthz`, `/readyz` and `/metrics`.

`/readyz` is 200 when the database answers a ping and every background loop is running (or
done); 503 while the process is starting, draining, cannot reach the database, or has a loop
waiting to start again after an error. Its body shows each loop's state either way.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from cityexchange.metrics import Metrics
from cityexchange.resources import Current
from cityexchange.services.errors import Unavailable
from cityexchange.supervisor import Supervisor

READINESS_TIMEOUT_SECONDS = 2.0


def routes(
    *,
    current: Current,
    supervisor: Callable[[], Supervisor | None],
    draining: Callable[[], bool],
    metrics: Metrics,
) -> list[Route]:
    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        loops = supervisor()
        status = "ready"
        if draining():
            status = "draining"
        elif not current.open or loops is None:
            status = "starting"
        else:
            try:
                await current().db.ping(within_seconds=READINESS_TIMEOUT_SECONDS)
            except Unavailable:
                status = "database unreachable"
            else:
                if loops.restarting:
                    status = f"restarting: {', '.join(loops.restarting)}"
        # The loops' states as they are now, after the ping.
        shown: dict[str, object] = {"status": status}
        if loops is not None:
            shown["loops"] = loops.as_json()
        return JSONResponse(shown, status_code=200 if status == "ready" else 503)

    async def prometheus(_: Request) -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    return [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", prometheus),
    ]
