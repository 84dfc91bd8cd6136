"""Where mocker keeps things on the host (see docs/architecture.md).

Persistent data lives under MOCKER_ROOT (default /var/lib/mocker); what must
vanish at reboot (runtime state, leases of live containers) under MOCKER_RUN
(default /run/mocker), as runc keeps its state under /run/runc.
"""

import os
from pathlib import Path


def root() -> Path:
    return Path(os.environ.get("MOCKER_ROOT", "/var/lib/mocker"))


def run_dir() -> Path:
    return Path(os.environ.get("MOCKER_RUN", "/run/mocker"))


def image_layout() -> Path:
    """The shared OCI image layout that mocker-fetch writes into."""
    return root() / "images"


def layer_cache() -> Path:
    """Unpacked layers, one directory per uncompressed digest (diff_id)."""
    return root() / "layers"


def containers_dir() -> Path:
    """One runtime bundle (config.json, rootfs/) per container."""
    return root() / "containers"


def runc_state_dir() -> Path:
    """mocker-runc's default --root (runc's is /run/runc)."""
    return run_dir() / "runc"


def engine_dir() -> Path:
    """bin/mocker's container records: name, image, log, exit status (one dir each)."""
    return root() / "engine"


def net_dir() -> Path:
    """mocker-net's leases and per-container records."""
    return root() / "net"
