"""Allow `python -m mocker_runc.engine` (bin/mocker calls it so)."""

import sys

from .cli import main

sys.exit(main())
