"""``python -m marladona`` runs the ``marladona`` command."""

from marladona.cli import main

raise SystemExit(main())
