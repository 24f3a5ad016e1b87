"""``python -m r3m`` runs the ``r3m`` command."""

from r3m.cli import main

raise SystemExit(main())
