"""``python -m jepsen_like``: the ``shoal chaos`` command line (see ``jepsen_like.cli``)."""

import sys

from jepsen_like.cli import main

sys.exit(main())
