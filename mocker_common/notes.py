"""-v notes on stderr, without importing logging on runs that print none.

Importing logging (with traceback, string, threading) costs ~5 ms, a tenth of a
short command's start. Unless -v or MOCKER_VERBOSE asked for notes,
cli.setup_logging leaves logging unimported, and then nothing has lowered the
root logger's level below WARNING: an INFO note would be dropped anyway.
"""

import sys


def info(logger: str, message: str, *args) -> None:
    """logging.getLogger(logger).info(message, *args), if anything imported logging."""
    logging = sys.modules.get("logging")
    if logging is not None:
        logging.getLogger(logger).info(message, *args)
