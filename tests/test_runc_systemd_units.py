"""The systemd cgroup driver's pure parts, and what it does on a host without systemd.

cgroupsPath parsing, slice expansion and the unit properties are checked here
against runc's rules (libcontainer/cgroups/systemd, docs/systemd.md); the
driver against a real systemd is in test_runc_systemd.py (a systemd-booted guest).
"""

import json
import os
import subprocess

import pytest

from mocker_common.errors import MockerError
from mocker_runc.cgroups import resources as res
from mocker_runc.cgroups import systemd, systemd_props as sp
from tests.conftest import need_root
from tests.fixtures.bundles import busybox_template, new_bundle, runc_tool  # noqa: F401

MiB = 1 << 20


@pytest.mark.parametrize("slice_, path", [
    ("system.slice", "/system.slice"),
    ("kubepods-besteffort-pod1234.slice",
     "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1234.slice"),
    ("-.slice", "/")])
def test_a_slice_nests_by_its_dashes(slice_, path):
    assert systemd.expand_slice(slice_) == path


@pytest.mark.parametrize("bad", ["system", ".slice", "a--b.slice", "-a.slice", "a-.slice",
                                 "a/b.slice", "user.slice/user-1.slice"])
def test_a_bad_slice_name_is_refused(bad):
    with pytest.raises(MockerError, match="invalid slice name"):
        systemd.expand_slice(bad)


def test_cgroups_path_gives_unit_and_slice_with_runc_defaults():
    place = systemd.parse_cgroups_path("kubepods-besteffort-pod1234.slice:cri-containerd:abcd", "x")
    assert (place.slice, place.unit) == ("kubepods-besteffort-pod1234.slice", "cri-containerd-abcd.scope")
    assert place.cgroup() == ("/kubepods.slice/kubepods-besteffort.slice/"
                              "kubepods-besteffort-pod1234.slice/cri-containerd-abcd.scope")
    empty = systemd.parse_cgroups_path("", "c1")
    assert (empty.slice, empty.unit) == ("system.slice", "mocker-c1.scope")
    assert systemd.parse_cgroups_path(":libpod:c2", "x").unit == "libpod-c2.scope"
    pod = systemd.parse_cgroups_path("kubepods.slice::kubepods-pod9.slice", "x")
    assert pod.is_slice and pod.unit == "kubepods-pod9.slice"


@pytest.mark.parametrize("bad", ["/mocker/c1", "a:b", "a:b:c:d", "system.slice:p:", "x.slice:p:../../etc"])
def test_a_cgroups_path_not_in_systemd_form_is_refused(bad):
    with pytest.raises(MockerError, match="cgroupsPath|slice|unit name"):
        systemd.parse_cgroups_path(bad, "id")


def _props(resources, version=252, v2=True, rules=None):
    found, files = sp.resource_properties(resources, rules, v2=v2, version=version)
    return {name: value for name, _, value in found}, files


def test_v2_limits_become_systemd_properties():
    found, files = _props({"memory": {"limit": 64 * MiB, "swap": 96 * MiB, "reservation": 16 * MiB},
                           "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0-2,5"},
                           "pids": {"limit": 20}})
    assert found["MemoryMax"] == 64 * MiB and found["MemorySwapMax"] == 32 * MiB
    assert found["MemoryLow"] == 16 * MiB and found["TasksMax"] == 20
    assert found["CPUWeight"] == 59              # the cpu.weight the cgroupfs driver writes
    assert found["CPUQuotaPerSecUSec"] == 500000 and found["CPUQuotaPeriodUSec"] == 100000
    assert found["AllowedCPUs"] == bytes([0b00100111])
    assert files["cpu"]["quota"] == 50000


def test_a_cpu_quota_is_rounded_up_to_systemds_percent_and_the_file_follows():
    found, files = _props({"cpu": {"quota": 12345, "period": 100000}})
    assert found["CPUQuotaPerSecUSec"] == 130000      # 12.345 % -> 13 %
    assert files["cpu"]["quota"] == 13000             # what cpu.max gets, as runc writes it


def test_unlimited_values_are_systemds_infinity_and_zero_tasks_is_one():
    found, _ = _props({"memory": {"limit": -1}, "pids": {"limit": -1}})
    assert found["MemoryMax"] == sp.INFINITY and found["TasksMax"] == sp.INFINITY
    assert sp.tasks_max(0) == 1


def test_old_systemd_gets_no_property_it_does_not_know():
    found, _ = _props({"cpu": {"period": 50000, "quota": 25000, "cpus": "1"}}, version=241)
    assert "CPUQuotaPeriodUSec" not in found and "AllowedCPUs" not in found
    assert found["CPUQuotaPerSecUSec"] == 500000


def test_v1_uses_the_v1_property_names():
    found, _ = _props({"memory": {"limit": 64 * MiB}, "cpu": {"shares": 512},
                       "blockIO": {"weight": 300}}, v2=False)
    assert found == {"MemoryLimit": 64 * MiB, "CPUShares": 512, "BlockIOWeight": 300}


def test_unified_files_map_to_properties_where_systemd_has_one():
    found, _ = _props({"unified": {"memory.high": "max", "pids.max": "7", "io.weight": "50",
                                   "cpu.max": "20000 100000"}})
    assert found["MemoryHigh"] == sp.INFINITY and found["TasksMax"] == 7
    assert found["CPUQuotaPerSecUSec"] == 200000 and "io.weight" not in json.dumps(list(found))


def _device_props(rules, devices=()):
    return {name: value for name, _, value in sp.device_properties(res.device_rules(rules, list(devices)))
            if value != []}


def test_device_rules_become_a_strict_allow_list():
    found = _device_props([{"allow": False, "access": "rwm"},
                           {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"}],
                          devices=[{"type": "b", "major": 7, "minor": 0}])
    assert found["DevicePolicy"] == "strict"
    allowed = dict(found["DeviceAllow"])
    assert allowed["/dev/char/10:229"] == "rw" and allowed["/dev/block/7:0"] == "rwm"
    assert allowed["/dev/char/1:3"] == "rwm" and allowed["char-136"] == "rwm"
    assert allowed["char-*"] == "m" and allowed["block-*"] == "m"
    assert "/dev/char/1:1" not in allowed      # /dev/mem: never unless asked


def test_allow_all_devices_is_policy_auto_and_a_deny_list_denies_all():
    assert _device_props([{"allow": True, "access": "rwm"}])["DevicePolicy"] == "auto"
    # allow all but /dev/null cannot be said to systemd: deny all (then the defaults)
    found = _device_props([{"allow": True, "access": "rwm"},
                           {"allow": False, "type": "c", "major": 1, "minor": 9, "access": "rwm"}])
    assert found["DevicePolicy"] == "strict"
    assert "/dev/char/1:9" in dict(found["DeviceAllow"])   # a default device, allowed again
    assert "char-*" in dict(found["DeviceAllow"]) and dict(found["DeviceAllow"])["char-*"] == "m"


def test_a_bad_cpuset_list_is_a_clear_error():
    with pytest.raises(MockerError, match="cpuset"):
        sp.range_to_bits("3-1")


def test_without_systemd_create_fails_in_one_line_and_leaves_nothing(runc_tool, new_bundle, unique):
    need_root()
    if os.path.isdir("/run/systemd/system"):
        pytest.skip("this host runs systemd")
    bundle = new_bundle(["true"])
    proc = runc_tool("--systemd-cgroup", "create", "-b", str(bundle), unique)
    assert proc.returncode == 5, proc.stderr
    assert proc.stderr.count("\n") == 1 and "systemd is not running on this host" in proc.stderr
    assert runc_tool.containers() == []
    # runc says the same kind of thing, and also leaves nothing
    runc = subprocess.run(["runc", "--systemd-cgroup", "--root", str(runc_tool.root) + "-runc", "create",
                           "-b", str(bundle), unique], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert runc.returncode != 0 and "systemd" in runc.stderr


def test_no_system_bus_is_one_line_naming_it(tmp_path, monkeypatch):
    from mocker_common.errors import ExitCode
    from mocker_runc.cgroups import systemd_dbus
    monkeypatch.setattr(systemd_dbus, "SYSTEMD_RUNNING", str(tmp_path))     # "booted with systemd"
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path}/no-bus")
    with pytest.raises(MockerError) as err:
        systemd_dbus.Systemd()
    assert err.value.code == ExitCode.UNREACHABLE and "\n" not in str(err.value)
    assert "D-Bus system bus" in str(err.value) and "no-bus" in str(err.value)
