"""Image config + options -> runtime config.json (a pure function, no I/O).

image-spec conversion.md says how an image's config maps onto the runtime-spec's
config.json; profile.py adds the defaults Docker gives every container, and the
options (docker-run-like flags) override both.
"""

import copy
import posixpath

from mocker_common import contract
from mocker_common.errors import MockerError

from . import profile
from .options import BundleOptions
from .users import resolve_user

OCI_VERSION = "1.0.2"


def runtime_config(image_config: dict, opts: BundleOptions,
                   passwd: str | None = None, group: str | None = None) -> dict:
    """The config.json for a container of this image; passwd/group: the rootfs's files."""
    cfg = image_config.get("config") or {}
    user = resolve_user(opts.user if opts.user is not None else cfg.get("User") or "",
                        passwd, group)
    hostname = opts.hostname or opts.container_id[:12]
    config = {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": opts.tty,
            "user": {"uid": user.uid, "gid": user.gid},
            "args": command_args(cfg, opts),
            "env": environment(cfg.get("Env") or [], opts.env, hostname, user.home, opts.tty),
            "cwd": working_dir(cfg, opts),
            "capabilities": {key: list(profile.DEFAULT_CAPABILITIES)
                             for key in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": opts.nofile, "soft": opts.nofile}],
            "noNewPrivileges": False,
        },
        "root": {"path": "rootfs", "readonly": opts.read_only},
        "hostname": hostname,
        "mounts": mounts(cfg, opts),
        "annotations": annotations(image_config, opts, hostname),
        "linux": linux_section(opts),
    }
    if user.additional_gids:
        config["process"]["user"]["additionalGids"] = user.additional_gids
    if opts.network == "bridge":
        config["hooks"] = network_hooks(opts)
    return config


def command_args(cfg: dict, opts: BundleOptions) -> list:
    """conversion.md: args = Entrypoint + Cmd; a command given replaces Cmd,
    and --entrypoint replaces the Entrypoint and drops the image's Cmd (as docker run)."""
    if opts.entrypoint is not None:
        entrypoint = [opts.entrypoint] if opts.entrypoint else []
        cmd = list(opts.command)
    else:
        entrypoint = list(cfg.get("Entrypoint") or [])
        cmd = list(opts.command) or list(cfg.get("Cmd") or [])
    args = entrypoint + cmd
    if not args:
        raise MockerError("no command: the image has no Entrypoint or Cmd; give one after the image")
    return args


def environment(image_env: list, overrides: list, hostname: str, home: str, tty: bool) -> list:
    """The image's Env, then -e overrides by name; defaults only for names still unset."""
    merged: dict = {}
    for item in list(image_env) + list(overrides):
        key, _, value = item.partition("=")
        merged[key] = value
    # conversion.md: a converter may add variables but not change the image's own.
    defaults = {"PATH": profile.DEFAULT_PATH, "HOSTNAME": hostname, "HOME": home}
    if tty:
        defaults["TERM"] = "xterm"
    for key, value in defaults.items():
        merged.setdefault(key, value)
    return [f"{key}={value}" for key, value in merged.items()]


def working_dir(cfg: dict, opts: BundleOptions) -> str:
    cwd = opts.workdir or cfg.get("WorkingDir") or "/"
    if not cwd.startswith("/"):
        raise MockerError(f"working directory {cwd!r} must be an absolute path")
    return posixpath.normpath(cwd)


def mounts(cfg: dict, opts: BundleOptions) -> list:
    """Docker's default mounts, then the image's Volumes, then -v binds (a bind wins)."""
    result = copy.deepcopy(profile.DEFAULT_MOUNTS)
    extra = {}
    if opts.volumes_dir:
        # conversion.md: Volumes become mounts, so data is not written into the rootfs.
        for number, path in enumerate(sorted(cfg.get("Volumes") or {})):
            extra[posixpath.normpath(path)] = _bind(f"{opts.volumes_dir}/{number}", path, False)
    for bind in opts.binds:
        extra[posixpath.normpath(bind.destination)] = _bind(bind.source, bind.destination,
                                                            bind.readonly)
    # Parents before children, so /a is mounted before /a/b.
    result += [extra[key] for key in sorted(extra, key=lambda p: (p.count("/"), p))]
    return result


def _bind(source: str, destination: str, readonly: bool) -> dict:
    options = ["rbind", "rprivate"] + (["ro"] if readonly else [])
    return {"destination": posixpath.normpath(destination), "type": "bind",
            "source": source, "options": options}


def annotations(image_config: dict, opts: BundleOptions, hostname: str) -> dict:
    """conversion.md's implicit annotations, overridden by Labels; then mocker's own."""
    cfg = image_config.get("config") or {}
    implicit = {
        "os": image_config.get("os"),
        "architecture": image_config.get("architecture"),
        "variant": image_config.get("variant"),
        "os.version": image_config.get("os.version"),
        "os.features": ",".join(image_config.get("os.features") or []) or None,
        "author": image_config.get("author"),
        "created": image_config.get("created"),
        "stopSignal": cfg.get("StopSignal"),
        "exposedPorts": ",".join(sorted(cfg.get("ExposedPorts") or {})) or None,
    }
    result = {contract.IMAGE_PREFIX + key: value for key, value in implicit.items() if value}
    result.update(cfg.get("Labels") or {})         # Labels take precedence
    result[contract.NETWORK] = opts.network
    result[contract.HOSTNAME] = hostname
    if opts.ports:
        result[contract.PORTS] = ",".join(map(str, opts.ports))
    return result


def network_hooks(opts: BundleOptions) -> dict:
    """runtime-spec: createRuntime hooks run once the namespaces exist, before
    pivot_root; poststop hooks after the container is gone. mocker-net reads the
    container's state (id, pid, bundle, annotations) on stdin."""
    if not opts.net_command or not opts.net_command.startswith("/"):
        raise MockerError("--network bridge needs mocker-net (not found on PATH)")
    return {
        "createRuntime": [{"path": opts.net_command, "args": ["mocker-net", "hook", "up"]}],
        "poststop": [{"path": opts.net_command, "args": ["mocker-net", "hook", "down"]}],
    }


def linux_section(opts: BundleOptions) -> dict:
    namespaces = [ns for ns in profile.DEFAULT_NAMESPACES
                  if not (ns == "network" and opts.network == "host")]
    linux = {
        "namespaces": [{"type": ns} for ns in namespaces],
        "cgroupsPath": f"/mocker/{opts.container_id}",
        "resources": resources(opts),
        "maskedPaths": list(profile.MASKED_PATHS),
        "readonlyPaths": list(profile.READONLY_PATHS),
    }
    if opts.seccomp:
        linux["seccomp"] = copy.deepcopy(opts.seccomp)
    if opts.devices:
        linux["devices"] = [{"path": d.container, "type": d.type, "major": d.major,
                             "minor": d.minor, "fileMode": d.mode, "uid": d.uid, "gid": d.gid}
                            for d in opts.devices]
    return linux


def device_rule(device) -> dict:
    """The cgroup rule that lets the container use a --device node (and no other)."""
    return {"allow": True, "type": device.type, "major": device.major, "minor": device.minor,
            "access": device.access}


def resources(opts: BundleOptions) -> dict:
    # Docker's device rules, then one allow rule per --device (as docker run).
    result = {"devices": copy.deepcopy(profile.DEFAULT_DEVICE_RULES)
              + [device_rule(device) for device in opts.devices]}
    if opts.memory is not None:
        result["memory"] = {"limit": opts.memory}
    if opts.cpus is not None:
        result["cpu"] = {"quota": int(opts.cpus * profile.CPU_PERIOD), "period": profile.CPU_PERIOD}
    if opts.pids_limit is not None:
        result["pids"] = {"limit": opts.pids_limit}
    return result
