"""-v for the runtime: each step said as it happens, in the words of `--explain`.

Off unless asked for, and then costless: say() returns at once while no sink
is set, and its text is formatted only when one is. Asked for by runc's
`--debug` (to stderr, or to --log when one is given), or by the engine under
`mocker -v`, which passes an fd of its stderr in MOCKER_NARRATE_FD: the
runtime's own stderr is the container's and goes to its log.

The container's side (the middle and init processes) closes every fd it was
not meant to keep, that one too, so it speaks over its channel to the
runtime ("note" messages, channel.py), which writes the line.
"""

import os

ENV = "MOCKER_NARRATE_FD"

_sink = None   # callable(str), or None: narration off


def say(text: str, *args) -> None:
    if _sink is None:
        return
    _sink(text % args if args else text)


def on() -> bool:
    return _sink is not None


def to(sink) -> None:
    global _sink
    _sink = sink


def to_fd(fd: int) -> None:
    def write(line: str) -> None:
        try:
            os.write(fd, f"mocker-runc: {line}\n".encode())
        except OSError:
            pass   # narration never fails a container
    to(write)


def via(channel) -> None:
    """In the container's processes: narrate through the channel, if narrating at all."""
    if _sink is not None:
        to(lambda line: channel.send("note", text=line))


def from_environment() -> None:
    fd = os.environ.get(ENV, "")
    if fd.isdigit():
        to_fd(int(fd))
