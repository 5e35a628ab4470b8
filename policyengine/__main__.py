"""`python -m policyengine`."""

import sys

from policyengine.cli import main

sys.exit(main())
