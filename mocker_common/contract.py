"""What crosses a process boundary between mocker's commands, written once.

The commands talk through text: mocker-fetch prints an `oci:` line that
mocker-bundle reads; mocker-bundle writes annotations into config.json that
mocker-net's hooks, the engine and mocker-bundle's own `--rm` read back; and
`-p` mappings travel as text inside one of those annotations. Each of these
is defined here and nowhere else, so both ends always agree. (Exit codes, the
other half of the contract, are ExitCode in errors.py, and Docker's codes
for `run` and `exec` below.)

Standard library only, and cheap to import: every command loads it.
"""

from .errors import Conflict, MockerError
from .record import FrozenRecord

# --- config.json annotations (runtime-spec "annotations"; keys in reverse-DNS form) ---
NETWORK = "org.mocker.network"     # bridge | none | host; also marks a bundle as mocker-bundle's
PORTS = "org.mocker.ports"         # published ports: PortMapping texts joined by ","
HOSTNAME = "org.mocker.hostname"   # the container's hostname, for mocker-net's lease
# image-spec's pre-defined annotation keys (image-spec annotations.md) and Docker's
# stop signal, which mocker-bundle copies from the image config.
IMAGE_PREFIX = "org.opencontainers.image."
STOP_SIGNAL = IMAGE_PREFIX + "stopSignal"


# --- what bin/mocker's run and exec exit with when the container's process did
# not run (else its own status), as `docker run` does; docs/architecture.md ---
RUN_FAILED = 125          # mocker itself failed: bad option, pull, bundle, runtime
CANNOT_INVOKE = 126       # the command is there but cannot be executed
COMMAND_NOT_FOUND = 127   # the command is not in the container


# --- the oci: line: mocker-fetch's stdout, mocker-bundle's input (skopeo's syntax) ---
def oci_line(layout: str, refname: str) -> str:
    """`oci:LAYOUT:REF`: an OCI image layout directory and a ref name in its index.json."""
    if ":" in layout:
        raise MockerError(f"the layout path {layout} cannot contain ':' "
                          "(the oci:LAYOUT:REF line splits there)")
    return f"oci:{layout}:{refname}"


def parse_oci_line(text: str) -> tuple[str, str | None] | None:
    """(layout, ref or None) of an `oci:LAYOUT[:REF]` text; None if it is not one."""
    if not text.startswith("oci:"):
        return None
    layout, _, ref = text[len("oci:"):].partition(":")
    if not layout:
        raise MockerError(f"no layout directory in {text!r}")
    return layout, ref or None


# --- published ports: `docker run -p [hostIP:]hostPort:containerPort[/tcp|udp]` ---
PROTOCOLS = ("tcp", "udp")


class PortMapping(FrozenRecord):
    """One -p: host_ip "" means every address of the host (docker shows 0.0.0.0)."""

    host_port: int
    container_port: int
    protocol: str = "tcp"
    host_ip: str = ""

    def __str__(self) -> str:
        prefix = f"{self.host_ip}:" if self.host_ip else ""
        return f"{prefix}{self.host_port}:{self.container_port}/{self.protocol}"

    def clashes_with(self, other: "PortMapping") -> bool:
        """Both would catch the same packets: same port and protocol, overlapping addresses."""
        return (self.protocol == other.protocol and self.host_port == other.host_port
                and (not self.host_ip or not other.host_ip or self.host_ip == other.host_ip))


def parse_port(text: str) -> PortMapping:
    spec, _, protocol = text.strip().partition("/")
    protocol = (protocol or "tcp").lower()
    if protocol not in PROTOCOLS:
        raise MockerError(f"invalid port {text!r}: protocol must be tcp or udp")
    host_ip, _, ports = spec.partition(":") if spec.count(":") == 2 else ("", "", spec)
    host_port, sep, container_port = ports.partition(":")
    if not sep:
        raise MockerError(f"invalid port {text!r}: expected [hostIP:]hostPort:containerPort[/tcp|udp]")
    if host_ip:
        import ipaddress   # here: 8 ms to import, and most mappings name no address
        try:
            host_ip = str(ipaddress.IPv4Address(host_ip))
        except ValueError:
            raise MockerError(f"invalid port {text!r}: {host_ip!r} is not an IPv4 address") from None
    return PortMapping(_port_number(host_port, text), _port_number(container_port, text),
                       protocol, host_ip)


def parse_ports(text: str | None) -> list[PortMapping]:
    """A comma-separated list, as in the org.mocker.ports annotation."""
    return distinct([parse_port(item) for item in (text or "").split(",") if item.strip()])


def distinct(mappings: list[PortMapping]) -> list[PortMapping]:
    """mappings, refused if two would catch the same packets."""
    for i, mapping in enumerate(mappings):
        for earlier in mappings[:i]:
            if mapping.clashes_with(earlier):
                raise Conflict(f"port {mapping} is given twice")
    return mappings


def _port_number(text: str, whole: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise MockerError(f"invalid port {whole!r}: {text!r} is not a port number 1-65535")
    return int(text)
