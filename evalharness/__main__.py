"""``python -m evalharness`` (also what ``torchrun -m evalharness`` runs)."""

import sys

from evalharness.cli import main

sys.exit(main())
