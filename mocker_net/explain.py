"""`mocker-net --explain [--network MODE] ID`: the network as a shell script (ip, nft, jq).

The `ip` and `nft` lines are made by the same functions the hook runs
(links.py, nat.py); the address is leased in mocker-net's own store under
its lock, so containers of `mocker run` and of this script never share one.
"""

import ipaddress
import json
import re
import shlex

from mocker_common import paths
from mocker_common.explain import RawShell, fill

from . import core, etcfiles, links, nat

TOOLS = ["ip", "nft", "jq", "flock"]

NETNS = r"""
# ==== mocker-net: the container's network ====
# A named network namespace (ip-netns(8)) the runtime joins: config.json names
# its path, as runtime-spec config-linux.md "Namespaces" allows.
NETNS=@NETNS@
ip netns add "$NETNS"
on_exit "ip netns del '$NETNS'"
jq --arg path "/run/netns/$NETNS" \
   '.linux.namespaces |= map(if .type == "network" then .path = $path else . end)' \
   "$BUNDLE/config.json" >"$WORK/config.json" && mv "$WORK/config.json" "$BUNDLE/config.json"
"""

NONE = r"""
# --network none: only the loopback interface, up. mocker_net/core.py
ip -n "$NETNS" link set dev lo up
"""

BRIDGE = r"""
# mocker-net's store (mocker_net/store.py): leases and records, changed under its lock.
STORE=@STORE@
mkdir -p "$STORE/leases" "$STORE/containers" "$STORE/networks"
exec 9>"$STORE/lock"
flock 9

# The bridge with the gateway's address; the host routes for its containers.
# mocker_net/links.py ensure_bridge
if ! ip link show dev @BRIDGE@ >/dev/null 2>&1; then
    ip @BRIDGE_CREATE@
fi
@BRIDGE_UP@
sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.@BRIDGE@.route_localnet=1
[ -f "$STORE/networks/@BRIDGE@.json" ] || echo @NETWORK_RECORD@ >"$STORE/networks/@BRIDGE@.json"

# The lowest free address of the subnet (mocker_net/ipam.py), and a MAC made
# from it as Docker makes them (02:42 + the address).
leases=$STORE/leases/@BRIDGE@.json
[ -f "$leases" ] || echo '{}' >"$leases"
i=2
while :; do
    a=$((@BASE@ + i))
    ADDR=$((a >> 24 & 255)).$((a >> 16 & 255)).$((a >> 8 & 255)).$((a & 255))
    [ "$(jq -r --arg a "$ADDR" 'has($a)' "$leases")" = true ] || break
    i=$((i + 1))
    [ "$i" -lt @SIZE@ ] || { echo "explain: no free address in @SUBNET@" >&2; exit 1; }
done
MAC=$(printf '02:42:%02x:%02x:%02x:%02x' $(echo "$ADDR" | tr . ' '))
HOST_IF=@HOST_IF@
jq --arg a "$ADDR" --arg id "$ID" '. + {($a): $id}' "$leases" >"$leases.tmp" && mv "$leases.tmp" "$leases"
# The record lets `mocker-net gc` clean up if this script is killed before its teardown.
jq -n --arg id "$ID" --arg netns "/run/netns/$NETNS" --argjson inode "$(stat -L -c %i "/run/netns/$NETNS")" \
      --arg address "$ADDR" --arg mac "$MAC" --arg host_if "$HOST_IF" --arg hostname "$(jq -r .hostname "$BUNDLE/config.json")" \
      '{id: $id, mode: "bridge", netns: $netns, netns_inode: $inode, bridge: @BRIDGE_JSON@,
        subnet: @SUBNET_JSON@, gateway: @GATEWAY_JSON@, address: $address, mac: $mac, mtu: @MTU@,
        host_ifname: $host_if, ifname: "eth0", ports: [], hostname: $hostname, caller: "explain"}' \
      >"$STORE/containers/$ID.json"
net_release() {   # the teardown's part: record and lease gone, under the lock
    exec 9>"$STORE/lock"
    flock 9
    rm -f "$STORE/containers/$ID.json"
    jq --arg a "$ADDR" 'del(.[$a])' "$leases" >"$leases.tmp" && mv "$leases.tmp" "$leases"
    [ "$(jq length "$leases")" != 0 ] || rm -f "$leases"
    exec 9>&-
}
on_exit net_release

# A veth pair: one end on the bridge, the other made right in the container's
# namespace as eth0 (veth(4)). mocker_net/links.py add_veth
ip @VETH@
on_exit "ip link del dev '$HOST_IF' 2>/dev/null"
echo 1 >"/sys/class/net/$HOST_IF/brport/hairpin_mode"
# Inside the namespace: address, up, loopback, default route via the gateway.
@CONTAINER_SIDE@

# NAT (nftables, one table per bridge): containers go out with the host's
# address. mocker_net/nat.py; made once, by the first container on the bridge.
if ! nft list table ip @TABLE@ >/dev/null 2>&1; then
    nft -f - <<'RULES'
@RULES@
RULES
fi
exec 9>&-

# /etc/hosts, /etc/hostname's peer and resolv.conf in the rootfs. mocker_net/etcfiles.py
printf '%s\n' @HOSTS_LINES@ "$ADDR	$(jq -r .hostname "$BUNDLE/config.json")" >"$BUNDLE/rootfs/etc/hosts"
cat >"$BUNDLE/rootfs/etc/resolv.conf" <<'RESOLV'
@RESOLV@RESOLV
echo "network: eth0 $ADDR/@PREFIX@ via @GATEWAY@ on @BRIDGE@" >&2
"""


def netns_name(container_id: str) -> str:
    return f"mocker-x-{container_id[:12]}"


def part(container_id: str, mode: str, net=None) -> str:
    text = fill(NETNS, NETNS=netns_name(container_id))
    if mode == "none":
        return text + NONE
    if mode != "bridge":
        raise ValueError(f"--explain knows --network bridge and none, not {mode}")
    net = net or core.resolve_network()
    gateway = ipaddress.IPv4Interface(f"{net.gateway}/{net.subnet.prefixlen}")
    veth = links.veth_command(net.bridge, "$HOST_IF", "/run/netns/$NETNS", "eth0", "$MAC", net.mtu)
    broadcast = "" if net.subnet.prefixlen >= 31 else f" broadcast {net.subnet.broadcast_address}"
    inside = links.container_side_commands("eth0", f"$ADDR/{net.subnet.prefixlen}{broadcast}",
                                           net.gateway)
    host_lines = etcfiles.hosts("").splitlines()   # its own line comes with $ADDR
    return text + fill(
        BRIDGE, STORE=str(paths.net_dir()), BRIDGE=net.bridge,
        BRIDGE_CREATE=RawShell(links.bridge_create_command(net.bridge, net.mtu)),
        BRIDGE_UP=RawShell("\n".join(f"ip {c}" for c in links.bridge_up_commands(net.bridge, gateway))),
        NETWORK_RECORD=_json({"bridge": net.bridge, "subnet": str(net.subnet),
                              "gateway": str(net.gateway), "mtu": net.mtu, "table": net.table}),
        BASE=int(net.subnet.network_address), SIZE=net.subnet.num_addresses - 1,
        SUBNET=str(net.subnet), HOST_IF=core.host_ifname(net, container_id),
        BRIDGE_JSON=RawShell(_json(net.bridge)),
        SUBNET_JSON=RawShell(_json(str(net.subnet))), GATEWAY_JSON=RawShell(_json(str(net.gateway))),
        MTU=net.mtu, VETH=RawShell(_dq(veth)),
        CONTAINER_SIDE=RawShell("\n".join(f"ip -n \"$NETNS\" {_dq(c)}" for c in inside)),
        TABLE=net.table, RULES=RawShell("\n".join(nat.ruleset(net, []))),
        HOSTS_LINES=RawShell(" ".join(_sq(line) for line in host_lines)),
        RESOLV=RawShell(etcfiles.resolv_conf(*etcfiles.read_host_resolv(), net.dns)),
        PREFIX=net.subnet.prefixlen, GATEWAY=str(net.gateway))


def _dq(command: str) -> str:
    """An ip command line with its $VARIABLES quoted for the shell."""
    return re.sub(r"(\S*\$[A-Z_]+\S*)", r'"\1"', command)


def _sq(text: str) -> str:
    return shlex.quote(text)


def _json(value) -> str:
    return json.dumps(value)
