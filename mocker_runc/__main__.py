"""Allow `python -m mocker_runc`."""

import sys

from .cli import main

sys.exit(main())
