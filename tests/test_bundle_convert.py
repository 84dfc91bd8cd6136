"""Image config -> config.json (mocker_bundle.convert, a pure function), checked
field by field and against the runtime-spec's JSON schema."""

import pytest

from mocker_bundle.convert import runtime_config
from mocker_bundle.options import (Bind, BundleOptions, parse_bind, parse_env, parse_memory,
                                   parse_network)
from mocker_bundle.users import resolve_user
from mocker_bundle.validate import validate_config
from mocker_common.contract import parse_port
from mocker_common.errors import MockerError
from tests.fixtures import images as fx

NET = "/usr/local/bin/mocker-net"


def configured(**overrides):
    opts = BundleOptions(container_id="c0ffee" * 4, net_command=NET, nofile=20000,
                         volumes_dir="/b/volumes", **overrides)
    config = runtime_config(fx.configured_image().config, opts,
                            fx.CONFIGURED_PASSWD, fx.CONFIGURED_GROUP)
    validate_config(config)
    return config


def env_of(config):
    return dict(item.split("=", 1) for item in config["process"]["env"])


def test_image_config_fields():
    config = configured()
    process = config["process"]
    assert process["args"] == ["/bin/echo", "entry", "from-cmd"]
    env = env_of(config)
    assert env["GREETING"] == "hello" and env["EMPTY"] == ""
    assert env["PATH"] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert env["HOME"] == "/home/app" and env["HOSTNAME"] == "c0ffeec0ffee"
    assert process["cwd"] == "/srv/app"
    assert process["user"] == {"uid": 1001, "gid": 1002, "additionalGids": [1003]}
    annotations = config["annotations"]
    assert annotations["org.opencontainers.image.exposedPorts"] == "53/udp,80/tcp"
    assert annotations["org.opencontainers.image.stopSignal"] == "SIGUSR1"
    assert annotations["org.opencontainers.image.os"] == "linux"
    assert annotations["org.opencontainers.image.architecture"] == "amd64"
    assert annotations["org.example.role"] == "test" and annotations["maintainer"] == "mocker"
    volume = [m for m in config["mounts"] if m["destination"] == "/data"]
    assert volume == [{"destination": "/data", "type": "bind", "source": "/b/volumes/0",
                       "options": ["rbind", "rprivate"]}]


def test_labels_take_precedence_over_implicit_annotations():
    image = {"os": "linux", "config": {"Cmd": ["sh"],
                                       "Labels": {"org.opencontainers.image.os": "mine"}}}
    config = runtime_config(image, BundleOptions(container_id="x", network="none"))
    assert config["annotations"]["org.opencontainers.image.os"] == "mine"


def test_default_profile_like_docker():
    config = configured()
    linux = config["linux"]
    assert {ns["type"] for ns in linux["namespaces"]} == {"pid", "ipc", "uts", "mount",
                                                           "network", "cgroup"}
    assert linux["cgroupsPath"] == "/mocker/" + "c0ffee" * 4
    assert {m["destination"] for m in config["mounts"]} >= {
        "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"}
    sys_mount = next(m for m in config["mounts"] if m["destination"] == "/sys")
    assert "ro" in sys_mount["options"]
    caps = config["process"]["capabilities"]
    assert "CAP_NET_BIND_SERVICE" in caps["bounding"] and "CAP_SYS_ADMIN" not in caps["bounding"]
    assert len(caps["effective"]) == 14
    assert "/proc/kcore" in linux["maskedPaths"] and "/proc/sys" in linux["readonlyPaths"]
    assert config["process"]["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": 20000, "soft": 20000}]
    assert config["hostname"] == "c0ffeec0ffee"


def test_command_entrypoint_env_overrides():
    config = configured(command=["one", "two"], env=["GREETING=bye", "NEW=1"])
    assert config["process"]["args"] == ["/bin/echo", "entry", "one", "two"]
    env = env_of(config)
    assert env["GREETING"] == "bye" and env["NEW"] == "1"
    # --entrypoint drops the image's Cmd too (docker run does the same).
    assert configured(entrypoint="/bin/sh")["process"]["args"] == ["/bin/sh"]
    assert configured(entrypoint="/bin/sh", command=["-c", "id"])["process"]["args"] == \
        ["/bin/sh", "-c", "id"]
    assert configured(entrypoint="", command=["id"])["process"]["args"] == ["id"]
    with pytest.raises(MockerError, match="no command"):
        configured(entrypoint="")


@pytest.mark.parametrize("spec, expected", [
    ("", (0, 0, [])),
    ("0", (0, 0, [])),
    ("app", (1001, 1002, [1003])),
    ("1001", (1001, 1002, [])),           # numeric: no supplementary groups (conversion.md)
    ("app:extra", (1001, 1003, [])),      # a group given: none either
    ("1001:1003", (1001, 1003, [])),
    ("4242", (4242, 0, [])),              # a uid without an entry is still valid
    ("4242:app", (4242, 1002, [])),
])
def test_user_forms(spec, expected):
    user = resolve_user(spec, fx.CONFIGURED_PASSWD, fx.CONFIGURED_GROUP)
    assert (user.uid, user.gid, user.additional_gids) == expected


@pytest.mark.parametrize("spec", ["nobody-here", "app:nogroup-here"])
def test_unknown_user_or_group_is_an_error(spec):
    with pytest.raises(MockerError, match="not found in the image's"):
        resolve_user(spec, fx.CONFIGURED_PASSWD, fx.CONFIGURED_GROUP)


def test_runtime_flags():
    config = configured(hostname="web", tty=True, read_only=True, memory=parse_memory("512m"),
                        cpus=1.5, pids_limit=64, workdir="/tmp",
                        binds=[parse_bind("/srv/host:/data:ro"), parse_bind("/a:/mnt/a")])
    assert config["hostname"] == "web" and config["annotations"]["org.mocker.hostname"] == "web"
    assert config["process"]["terminal"] is True and env_of(config)["TERM"] == "xterm"
    assert config["root"] == {"path": "rootfs", "readonly": True}
    resources = config["linux"]["resources"]
    assert resources["memory"] == {"limit": 512 << 20}
    assert resources["cpu"] == {"quota": 150000, "period": 100000}
    assert resources["pids"] == {"limit": 64}
    assert config["process"]["cwd"] == "/tmp"
    data = [m for m in config["mounts"] if m["destination"] == "/data"]
    assert data == [{"destination": "/data", "type": "bind", "source": "/srv/host",
                     "options": ["rbind", "rprivate", "ro"]}]     # -v wins over the image Volume
    assert any(m["source"] == "/a" and m["destination"] == "/mnt/a" for m in config["mounts"])


def test_network_modes_and_hooks():
    bridge = configured(ports=[parse_port("8080:80"), parse_port("127.0.0.1:5353:53/udp")])
    assert bridge["annotations"]["org.mocker.network"] == "bridge"
    assert bridge["annotations"]["org.mocker.ports"] == "8080:80/tcp,127.0.0.1:5353:53/udp"
    assert bridge["hooks"] == {
        "createRuntime": [{"path": NET, "args": ["mocker-net", "hook", "up"]}],
        "poststop": [{"path": NET, "args": ["mocker-net", "hook", "down"]}]}
    assert {"type": "network"} in bridge["linux"]["namespaces"]
    none = configured(network="none")
    assert "hooks" not in none and {"type": "network"} in none["linux"]["namespaces"]
    host = configured(network="host")
    assert "hooks" not in host and {"type": "network"} not in host["linux"]["namespaces"]
    assert host["annotations"]["org.mocker.network"] == "host"
    with pytest.raises(MockerError, match="mocker-net"):
        runtime_config(fx.configured_image().config,
                       BundleOptions(container_id="x", network="bridge"),
                       fx.CONFIGURED_PASSWD, fx.CONFIGURED_GROUP)


def test_seccomp_profile_is_carried():
    profile = {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
               "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}
    assert configured(seccomp=profile)["linux"]["seccomp"] == profile


@pytest.mark.parametrize("bad, parser", [
    ("12q", parse_memory), ("1k", parse_memory), ("rel:/x", parse_bind), ("/x", parse_bind),
    ("80", parse_port), ("70000:80", parse_port), ("8080:80/sctp", parse_port),
])
def test_bad_flag_values(bad, parser):
    with pytest.raises(MockerError):
        parser(bad)


def test_parse_helpers():
    assert parse_memory("1g") == 1 << 30
    assert parse_bind("/h:/c:ro") == Bind("/h", "/c", True)
    assert parse_env(["A=1", "HOSTVAR", "UNSET"], {"HOSTVAR": "x"}) == ["A=1", "HOSTVAR=x"]
    with pytest.raises(MockerError, match="need --network bridge"):
        parse_network("none", ["80:80/tcp"])
    with pytest.raises(MockerError, match="invalid --network"):
        parse_network("overlay", [])


def test_schema_rejects_a_broken_config():
    config = configured()
    config["process"]["user"]["uid"] = "root"
    with pytest.raises(MockerError, match="process/user/uid"):
        validate_config(config)


def test_device_rules_are_dockers():
    """Deny all, mknod of anything, the devices every program expects, nothing else."""
    from mocker_runc.cgroups import devices
    rules = configured()["linux"]["resources"]["devices"]
    assert rules[0] == {"allow": False, "access": "rwm"}
    listed = [str(devices.parse(rule)) for rule in rules[1:]]
    assert listed == ["c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm",
                      "c 1:9 rwm", "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm"]
    assert "devices" not in configured()["linux"]


@pytest.mark.parametrize("text, host, container, access", [
    ("/dev/loop0", "/dev/loop0", "/dev/loop0", "rwm"),
    ("/dev/loop0:/dev/xvda", "/dev/loop0", "/dev/xvda", "rwm"),
    ("/dev/loop0:r", "/dev/loop0", "/dev/loop0", "r"),
    ("/dev/loop0:/dev/xvda:mr", "/dev/loop0", "/dev/xvda", "rm"),
])
def test_device_option_as_docker_reads_it(text, host, container, access):
    from mocker_bundle.options import parse_device
    device = parse_device(text)
    assert (device.host, device.container, device.access) == (host, container, access)


@pytest.mark.parametrize("text", ["loop0", "/dev/loop0:xvda", "/dev/a:/dev/b:rx", "/a:/b:/c"])
def test_bad_device_options(text):
    from mocker_bundle.options import parse_device
    with pytest.raises(MockerError, match="invalid --device"):
        parse_device(text)


def test_a_device_gets_its_node_and_exactly_one_rule():
    from mocker_bundle.devices import host_device
    from mocker_bundle.options import parse_device
    device = host_device(parse_device("/dev/null:/dev/mine:r"))
    config = configured(devices=[device])
    assert config["linux"]["devices"] == [{"path": "/dev/mine", "type": "c", "major": 1, "minor": 3,
                                           "fileMode": 0o666, "uid": 0, "gid": 0}]
    assert config["linux"]["resources"]["devices"][-1] == {
        "allow": True, "type": "c", "major": 1, "minor": 3, "access": "r"}
    with pytest.raises(MockerError, match="--device /etc/passwd: not a character or block device"):
        host_device(parse_device("/etc/passwd"))
    with pytest.raises(MockerError, match="--device /dev/nonexistent: No such file"):
        host_device(parse_device("/dev/nonexistent"))
