"""``python -m audit ...``: the audit log command line (see :mod:`audit.cli`)."""

import sys

from audit.cli import main

sys.exit(main())
