"""``python -m adapref`` runs the ``adapref`` command."""

from adapref.cli import main

raise SystemExit(main())
