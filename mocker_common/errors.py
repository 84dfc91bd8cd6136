"""The one error type the commands raise, and the exit codes they use.

A command catches MockerError at its edge (see cli.run), prints its message as
one line on stderr and exits with its code. Codes are named so that scripts
and tests can tell failures apart.
"""

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    ERROR = 1            # anything not listed below
    USAGE = 2            # bad command line (argparse uses 2 too)
    NOT_FOUND = 3        # unknown image, tag, container or file
    UNAUTHORIZED = 4     # the registry refused our credentials
    UNREACHABLE = 5      # the registry or a host could not be reached
    CORRUPT = 6          # a digest or size did not match; bad or unsafe content
    NO_SPACE = 7         # the disk is full
    CONFLICT = 8         # already exists, in use, or locked by another
    CERTIFICATE = 9      # a registry's TLS certificate could not be verified (or ours was refused)
    NOT_PULLED = 10      # mocker-bundle: the image is not in the store (bin/mocker pulls it then)
    INTERRUPTED = 130    # Ctrl-C, as a shell reports SIGINT


class MockerError(Exception):
    """A failure to report to the user as one line, with an exit code."""

    code = ExitCode.ERROR

    def __init__(self, message: str, code: ExitCode | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code


class NotFound(MockerError):
    code = ExitCode.NOT_FOUND


class NotPulled(NotFound):
    """Only this not-found means "pull it": a missing --env-file or user must not."""
    code = ExitCode.NOT_PULLED


class Unauthorized(MockerError):
    code = ExitCode.UNAUTHORIZED


class Unreachable(MockerError):
    code = ExitCode.UNREACHABLE


class Corrupt(MockerError):
    code = ExitCode.CORRUPT


class Conflict(MockerError):
    code = ExitCode.CONFLICT


class CertificateError(MockerError):
    code = ExitCode.CERTIFICATE
