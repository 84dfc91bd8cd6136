"""The engine behind `mocker`: what docker's daemon keeps, without a daemon.

bin/mocker chains mocker-fetch, mocker-bundle and mocker-runc; what needs more
than a pipe lives here, called as `python3 -m mocker_engine VERB`. It is an
engine, not a runtime (containerd and conmon keep records, runc does not): it
runs the OCI runtime as a command (mocker-runc, or runc with MOCKER_RUNTIME)
and sits above the four commands; none of them imports it.

- records.py   one record per container (id, name, image, status, times) and
               how names, ids and id prefixes are resolved;
- names.py     generated adjective_noun names;
- runtime.py   how the engine calls the OCI runtime (mocker-runc, or runc);
- bundles.py   what it reads from (and, for --init, adds to) config.json;
- monitor.py   the per-container monitor (like containerd's shim or conmon):
               runs `mocker-runc run`, logs output, records the exit, runs --rm;
- lifecycle.py stop, kill, start, rm: signals, waiting, teardown;
- table.py     what `ps`, `inspect` and `port` print;
- logs.py      `logs [-f] [--tail N]`.

Standard library only: every `mocker run` starts it once (bin/mocker's
`run` verb, which becomes the monitor), so it must start fast.
"""
