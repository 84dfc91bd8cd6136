"""-v notes on stderr, without importing logging on runs that print none.

Importing logging (with traceback, string, threading) costs ~5 ms, a tenth of a
warm bundle. Unless -v or MOCKER_VERBOSE asked for notes, cli.setup_logging
leaves logging unimported, and then nothing has lowered the root logger's level
below WARNING: an INFO note would be dropped anyway.
"""

import sys

LOGGER = "mocker.bundle"


def info(message: str, *args) -> None:
    logging = sys.modules.get("logging")
    if logging is not None:
        logging.getLogger(LOGGER).info(message, *args)
