"""Allow `python -m mocker_net`."""

import sys

from .cli import main

sys.exit(main())
