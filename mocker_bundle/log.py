"""-v notes on stderr, without importing logging on runs that print none
(see mocker_common.notes): a tenth of a warm bundle's time."""

from mocker_common import notes

LOGGER = "mocker.bundle"


def info(message: str, *args) -> None:
    notes.info(LOGGER, message, *args)
