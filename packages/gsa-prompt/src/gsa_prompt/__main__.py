"""``python -m gsa_prompt`` runs the ``gsa-prompt`` command."""

from gsa_prompt.cli import main

raise SystemExit(main())
