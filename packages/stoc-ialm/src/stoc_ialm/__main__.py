"""``python -m stoc_ialm`` runs the ``stoc-ialm`` command."""

from stoc_ialm.cli import main

raise SystemExit(main())
