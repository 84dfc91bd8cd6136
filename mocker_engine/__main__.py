"""Allow `python -m mocker_engine` (bin/mocker calls it so)."""

from mocker_common.cli import exit_without_teardown

from .cli import main

# Records are written and files closed when main returns; the user of
# `mocker run --rm` need not wait for the interpreter to free its modules.
exit_without_teardown(main())
