"""Allow `python -m mocker_fetch`."""

import sys

from .cli import main

sys.exit(main())
