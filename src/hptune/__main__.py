"""``python -m hptune`` runs the CLI."""

import sys

from hptune.cli import main

sys.exit(main())
