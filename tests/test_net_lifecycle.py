"""Setup and teardown as users meet them: many at once, after SIGKILL, on bad input."""

import json
import os
import secrets
import socket
from concurrent.futures import ThreadPoolExecutor

from mocker_common import paths
from tests.fixtures.network import free_port, free_subnet, host_links, mocker_net, host_veth


def net_files() -> list[str]:
    """Files under the net dir that describe a container (records, leases)."""
    base = paths.net_dir()
    return sorted(str(p.relative_to(base)) for d in ("containers", "leases")
                  for p in (base / d).glob("*") if (base / d).exists())


def assert_gone(network, records: list[dict]) -> None:
    links = host_links()
    rules = network.rules()
    for record in records:
        assert record["host_ifname"] not in links
        assert f'"{record["id"]}"' not in rules
        assert mocker_net("inspect", record["id"]).returncode == 3
    assert "dnat to" not in rules
    assert net_files() == []


def test_twenty_containers_in_parallel_get_unique_addresses_and_leave_nothing(containers, network):
    crowd = [containers(ports=f"{free_port()}:80") for _ in range(20)]
    with ThreadPoolExecutor(20) as pool:
        ups = list(pool.map(lambda c: c.hook("up"), crowd))
    assert [u.returncode for u in ups] == [0] * 20, [u.stderr for u in ups if u.returncode]
    records = [c.record() for c in crowd]
    addresses = [r["address"] for r in records]
    assert len(set(addresses)) == 20
    assert len({r["host_ifname"] for r in records}) == 20
    listed = json.loads(mocker_net("ls", "--json").stdout)
    assert {r["id"] for r in listed} >= {c.id for c in crowd}
    assert network.rules().count("dnat to") == 20
    for c in crowd:
        c.kill()
    with ThreadPoolExecutor(20) as pool:
        downs = list(pool.map(lambda c: c.hook("down"), crowd))
    assert [d.returncode for d in downs] == [0] * 20
    assert_gone(network, records)


def test_teardown_after_sigkill_and_twice_is_clean(containers, network):
    c = containers(ports=f"{free_port()}:80")
    record = c.up()
    c.kill()                                   # the runtime would now run poststop
    assert c.hook("down").returncode == 0
    assert c.hook("down").returncode == 0      # idempotent
    assert_gone(network, [record])


def test_gc_reclaims_what_a_killed_container_left(containers, network):
    dead, alive = containers(ports=f"{free_port()}:80"), containers()
    dead_record, alive_record = dead.up(), alive.up()
    dead.kill()                                # and no poststop hook ever runs
    done = mocker_net("gc")
    assert done.returncode == 0 and done.stdout.split() == [dead.id]
    assert dead_record["host_ifname"] not in host_links()
    assert "dnat to" not in network.rules()
    assert mocker_net("inspect", dead.id).returncode == 3
    assert alive.record()["address"] == alive_record["address"]
    assert alive.hook("down").returncode == 0
    assert_gone(network, [dead_record, alive_record])


def test_stale_lease_is_reclaimed_by_the_next_setup(containers, network):
    first = containers()
    address = first.up()["address"]
    first.kill()
    second = containers()
    assert second.up()["address"] == address   # the lowest free address again
    assert mocker_net("inspect", first.id).returncode == 3


def test_published_port_is_refused_twice_and_nothing_is_left(containers, network):
    port = free_port()
    first, second = containers(ports=f"{port}:80"), containers(ports=f"{port}:81")
    first.up()
    done = second.hook("up")
    assert done.returncode == 8
    assert done.stderr.strip().count("\n") == 0
    assert f"host port {port}/tcp is already published by container {first.id}" in done.stderr
    assert not host_veth(network, second.id) & host_links()
    assert mocker_net("inspect", second.id).returncode == 3
    assert network.rules().count("dnat to") == 1


def test_port_a_host_process_listens_on_is_refused(containers, network):
    with socket.socket() as listener:
        listener.bind(("0.0.0.0", 0))
        listener.listen()
        port = listener.getsockname()[1]
        c = containers(ports=f"{port}:80")
        done = c.hook("up")
    assert done.returncode == 8
    assert f"host port {port}/tcp is already in use" in done.stderr
    assert mocker_net("inspect", c.id).returncode == 3


def test_none_mode_has_only_loopback_and_host_mode_keeps_the_host_network(containers, network):
    none = containers(mode="none")
    none.up()
    names = none.run("ip", "-o", "link").stdout
    assert "lo:" in names and "eth0" not in names
    assert "UP" in none.run("ip", "link", "show", "lo").stdout
    assert (none.rootfs / "etc/hosts").exists()
    host = containers(mode="host")
    host.holder.kill()   # host mode: the "container" is a host process; use ours instead
    host.pid = os.getpid()
    assert host.up()["mode"] == "host"
    assert not host_veth(network, host.id) & host_links()
    assert "nameserver" in (host.rootfs / "etc/resolv.conf").read_text()


def test_subnet_overlapping_a_host_route_is_refused(remote_host, tmp_path):
    env = {**os.environ, "MOCKER_BRIDGE": "mk" + secrets.token_hex(4),
           "MOCKER_SUBNET": str(remote_host.subnet)}
    state = json.dumps({"id": "overlap", "pid": remote_host.pid, "bundle": str(tmp_path)})
    done = mocker_net("hook", "up", stdin=state, env=env)
    assert done.returncode == 1
    assert f"overlaps the host route {remote_host.subnet} on {remote_host.link}" in done.stderr
    assert env["MOCKER_BRIDGE"] not in host_links()


def test_verbose_prints_each_step_as_ip_and_nft_commands(containers):
    c = containers(ports=f"{free_port()}:80")
    done = c.hook("up", "-v")
    assert done.returncode == 0, done.stderr
    assert "ip link add name veth" in done.stderr
    assert f"nsenter --net=/proc/{c.pid}/ns/net ip route add default via" in done.stderr
    assert "add rule ip mocker_" in done.stderr and "dnat to" in done.stderr


def test_bad_hook_input_is_one_clear_line(network):
    for stdin, message in (("not json", "not a runtime-spec state JSON"),
                           ('{"id": "x"}', "has no pid"),
                           ('{"id": "../x", "pid": 1}', "invalid container id")):
        done = mocker_net("hook", "up", stdin=stdin)
        assert done.returncode != 0
        assert message in done.stderr and done.stderr.count("\n") == 1
    assert net_files() == []


def test_bad_port_annotation_is_refused(containers):
    c = containers(ports="80:99999")
    done = c.hook("up")
    assert done.returncode == 1 and "not a port number" in done.stderr
    assert mocker_net("inspect", c.id).returncode == 3


def test_etc_files_never_follow_a_symlink_out_of_the_rootfs(containers, tmp_path):
    outside = tmp_path / "host-resolv.conf"
    outside.write_text("precious\n")
    c = containers()
    (c.rootfs / "etc").mkdir()
    (c.rootfs / "etc/resolv.conf").symlink_to(outside)
    c.up()
    assert outside.read_text() == "precious\n"
    assert not (c.rootfs / "etc/resolv.conf").is_symlink()


def test_ls_and_inspect_show_address_and_ports(containers):
    port = free_port()
    c = containers(ports=f"{port}:80")
    record = c.up()
    table = mocker_net("ls").stdout
    assert c.id in table and record["address"] in table and f"{port}:80/tcp" in table
    shown = mocker_net("inspect", c.id).stdout
    assert record["host_ifname"] in shown
    missing = mocker_net("inspect", "nosuch")
    assert missing.returncode == 3 and "no network record" in missing.stderr


def test_explicit_subnet_must_match_an_existing_bridge(containers, network):
    c = containers()
    c.up()
    other = str(free_subnet())
    done = mocker_net("--subnet", other, "hook", "up", stdin=containers().state())
    assert done.returncode == 8 and f"already uses subnet {network.subnet}" in done.stderr


def test_bridge_mode_refuses_a_container_in_the_host_namespace(network, tmp_path):
    state = json.dumps({"id": "hostns", "pid": os.getpid(), "bundle": str(tmp_path)})
    done = mocker_net("hook", "up", stdin=state)
    assert done.returncode == 1 and "network namespace of its own" in done.stderr
    assert not host_veth(network, "hostns") & host_links() and net_files() == []


def test_a_failure_midway_undoes_links_rules_and_lease(containers, network, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    c = containers(ports=f"{free_port()}:80")
    (c.rootfs / "etc").symlink_to(outside)     # found only after veth and rules exist
    done = c.hook("up")
    assert done.returncode == 1 and "a symlink is refused" in done.stderr
    assert done.stderr.count("\n") == 1
    assert list(outside.iterdir()) == []
    assert not host_veth(network, c.id) & host_links()
    assert "dnat to" not in network.rules()
    assert mocker_net("inspect", c.id).returncode == 3 and net_files() == []


def test_hostile_hostname_is_refused_before_anything_is_made(containers, network):
    """The hostname becomes lines of the container's /etc/hosts: RFC 1123 or nothing."""
    for hostname in ("web\n6.6.6.6 bank.example", "web host", "-web", "a" * 64):
        c = containers(hostname=hostname)
        done = c.hook("up")
        assert done.returncode == 2, done.stderr
        assert "invalid hostname" in done.stderr and done.stderr.count("\n") == 1, done.stderr
        assert not (c.bundle / "rootfs/etc/hosts").exists()
        # (only this container's veth: other sessions make links meanwhile)
        assert not host_veth(network, c.id) & host_links()
    assert net_files() == []


def test_a_failed_ip_batch_undoes_its_earlier_lines_and_names_the_line(tmp_path):
    """ip -batch stops at the first failing line: the lines before it are taken back."""
    import subprocess

    import pytest

    from mocker_common.errors import MockerError
    from mocker_net import links
    ns = "mk" + secrets.token_hex(4)
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        path = f"/run/netns/{ns}"
        with pytest.raises(MockerError) as failed:
            links.ip("cannot make bridges", ("link add name d0 type bridge", "link del dev d0"),
                     ("link add name d1 type bridge", "link del dev d1"),
                     "link add name d0 type bridge", netns=path)
        message = str(failed.value)
        assert "\n" not in message and "(line 3: link add name d0 type bridge)" in message, message
        shown = subprocess.run(["ip", "-n", ns, "-o", "link"], capture_output=True, text=True)
        assert "d0" not in shown.stdout and "d1" not in shown.stdout, shown.stdout
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=True)
