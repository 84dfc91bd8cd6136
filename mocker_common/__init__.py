"""What the mocker commands share: errors and exit codes, digests, media types,
the store's paths, atomic files and locks, and the CLI frame.

Keep this package small and free of heavy imports: every command starts here.
"""

__version__ = "0.1.0"
