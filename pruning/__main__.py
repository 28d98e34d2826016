"""``python -m pruning``: the ``pruning`` command (``pruning.cli.main``)."""

from pruning.cli.main import main

raise SystemExit(main())
