"""``python -m refinery.demo.ensembl_server``: serve a generated demo organism (see :mod:`.cli`)."""

from refinery.demo.ensembl_server.cli import main

raise SystemExit(main())
