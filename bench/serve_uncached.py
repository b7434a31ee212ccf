"""`boda serve`'s app with every answer computed (no reuse of ledger-only answers), for section 5's
load lines: what the shared context alone gives.

    python bench/serve_uncached.py CONFIG PORT
"""

from __future__ import annotations

import sys

import uvicorn

from boda.config import load_config
from boda.web.app import create_app


def main() -> int:
    app = create_app(load_config(sys.argv[1]), answer_age=0)
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
