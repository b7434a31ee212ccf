"""The naive server of section 7: the API as it was before one context per process, a new Context
(registry client, ledger connection, migration check) opened and closed for every request.

    python bench/naive_serve.py CONFIG PORT
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn
from fastapi import FastAPI

from boda.config import load_config
from boda.services import status as status_service
from boda.services.context import Context


def main() -> int:
    config = load_config(sys.argv[1])
    app = FastAPI()

    @app.get("/api/apps/{app:path}/status")
    def status(app: str, previous: int = 10) -> dict[str, Any]:
        with Context(config) as ctx:
            return status_service.status(ctx, app, previous=previous).to_json()

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"ok": True}

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
