"""``python -m fedchain.cli``: the ``fedchain`` command."""

import sys

from fedchain.cli import main

sys.exit(main())
