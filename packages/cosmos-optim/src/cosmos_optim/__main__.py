"""``python -m cosmos_optim`` runs the ``cosmos-optim`` command."""

from cosmos_optim.cli import main

raise SystemExit(main())
