"""``python -m demo.ensembl_server``: serve a generated demo organism (see :mod:`.cli`)."""

from demo.ensembl_server.cli import main

raise SystemExit(main())
