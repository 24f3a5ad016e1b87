"""Optional integrations with training frameworks; each submodule needs its own extra (e.g. ``r3m[trl]``)."""
