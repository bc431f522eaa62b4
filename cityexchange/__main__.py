"""`python -m cityexchange`: the `cityexchange` command."""

import sys

from cityexchange.cli import main

sys.exit(main())
