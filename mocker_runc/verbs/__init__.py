"""mocker-runc's verbs, one module each, as runc's and crun's are.

Each module has HELP (one line), add_arguments(parser) and run(store, args);
cli.py imports only the one named on the command line. What several verbs
share (the container id, create's options) is in common.py.
"""

# the order `mocker-runc --help` lists them in
NAMES = ("create", "start", "run", "state", "kill", "delete", "list", "ps", "exec", "spec",
         "features", "update", "pause", "resume", "events", "devices")
