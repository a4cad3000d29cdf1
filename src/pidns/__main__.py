"""``python -m pidns``: the same as the ``pidns`` command."""

from pidns.cli.main import main

raise SystemExit(main())
