"""Allow `python -m mocker_runc.engine` (bin/mocker calls it so)."""

import os
import sys

from .cli import main

code = main()
# Leave without the interpreter's teardown (it frees every module's objects one
# by one, ~10 ms that the user of `mocker run --rm` waits for): files are closed
# and records written by now; only what we printed may still sit in a buffer.
try:
    sys.stdout.flush()
    sys.stderr.flush()
except BrokenPipeError:  # our reader left (`mocker ps | head`): nothing to say
    pass
os._exit(code)
