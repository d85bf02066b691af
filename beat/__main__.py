"""``python -m beat``: the command line (see :mod:`beat._cli`)."""

from ._cli import main

raise SystemExit(main())
