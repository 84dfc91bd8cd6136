"""The rules for names (mocker_common/names.py), each against its standard's cases."""

import pytest

from mocker_common import names
from mocker_common.errors import ExitCode

INJECTIONS = ["a\nb", "a b", "a/b", "..", ".", "", "a\tb", "a\x00b"]


@pytest.mark.parametrize("cid", ["c1", "web.1", "a_b", "a+b,c-d", "x" * 255, "0" * 64])
def test_runtime_ids_runc_takes(cid):
    assert names.runtime_id(cid) == cid


@pytest.mark.parametrize("cid", INJECTIONS + ["x" * 256, "a:b", "ä"])
def test_runtime_ids_runc_refuses(cid):
    with pytest.raises(names.InvalidName) as err:
        names.runtime_id(cid)
    assert err.value.code == ExitCode.USAGE and "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["eth0", "veth1234abcd", "a" * 15, "br-x.1", "up", "ünï"])
def test_interface_names_the_kernel_takes(name):
    assert names.interface_name(name) == name


@pytest.mark.parametrize("name", INJECTIONS + ["a" * 16, "ü" * 8, "eth0:1", "eth#0", "e'0",
                                               'e"0', "e\\0"])
def test_interface_names_refused(name):
    """dev_valid_name(): 1-15 bytes (not characters), no '/', ':' or space; and
    nothing `ip -batch` would read as a comment or a quote."""
    with pytest.raises(names.InvalidName):
        names.interface_name(name)


@pytest.mark.parametrize("name", ["web", "a-b.example.com", "x1", "1x", "a" * 63])
def test_hostnames_rfc1123_takes(name):
    assert names.hostname(name) == name


@pytest.mark.parametrize("name", INJECTIONS + ["-web", "web-", "a..b", "a_b", "a" * 64,
                                               ".".join(["a" * 60] * 5)])
def test_hostnames_refused(name):
    with pytest.raises(names.InvalidName):
        names.hostname(name)


@pytest.mark.parametrize("name", ["web", "my_web.1", "A-1"])
def test_container_names_docker_takes(name):
    assert names.container_name(name) == name


@pytest.mark.parametrize("name", INJECTIONS + ["-web", "_web", ".web", "a" * 129])
def test_container_names_refused(name):
    with pytest.raises(names.InvalidName):
        names.container_name(name)


def test_a_trailing_newline_is_no_part_of_a_digest_or_an_id():
    """Python's `$` matches before a final newline: the checks match the whole text."""
    from mocker_common.digest import parse_digest
    from mocker_common.errors import MockerError
    from mocker_engine import records
    with pytest.raises(MockerError):
        parse_digest("sha256:" + "a" * 64 + "\n")
    assert not records.ID_RE.fullmatch("a" * 64 + "\n")
