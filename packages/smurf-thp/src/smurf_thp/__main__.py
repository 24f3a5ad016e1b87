"""``python -m smurf_thp`` runs the ``smurf-thp`` command."""

from smurf_thp.cli import main

raise SystemExit(main())
