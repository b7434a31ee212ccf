"""`python -m boda`."""

from boda.cli import main

raise SystemExit(main())
