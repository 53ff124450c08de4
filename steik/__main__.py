"""`python -m steik` runs the command line."""

import sys

from steik.cli import main

sys.exit(main())
