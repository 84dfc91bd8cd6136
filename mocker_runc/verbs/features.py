"""runc features: what this runtime supports, as JSON (runtime-spec features.md)."""

import json

from .. import spec as specs

HELP = "print what this runtime supports (JSON)"


def add_arguments(p):
    pass


def run(store, args):
    print(json.dumps({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": specs.SPEC_VERSION,
        "hooks": list(specs.HOOK_POINTS),
        "mountOptions": sorted(specs._MOUNT_FLAGS) + sorted(specs._PROPAGATION),
        "linux": {
            "namespaces": list(specs.NAMESPACES),
            "capabilities": ["CAP_" + c for c in specs.CAPABILITIES],
            "cgroup": {"v1": True, "v2": True, "systemd": True},
            "seccomp": {"enabled": True},
        },
        "annotations": {"org.mocker.runtime": "mocker-runc"},
    }, indent=2))
