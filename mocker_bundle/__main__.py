"""Allow `python -m mocker_bundle`."""

import sys

from .cli import main

sys.exit(main())
