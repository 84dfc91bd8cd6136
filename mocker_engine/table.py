"""What `mocker ps`, `inspect` and `port` print, in docker's words and columns."""

import datetime
import json
import re

from mocker_common import contract

from .records import CREATED, DEAD, EXITED, RUNNING, Record, log_path

COMMAND_WIDTH = 20  # docker ps cuts COMMAND to 20 characters, "…" included


def human_duration(seconds: float) -> str:
    """Docker's wording for a duration: "Less than a second", "3 minutes", "About an hour"."""
    seconds = max(0.0, seconds)
    if seconds < 1:
        return "Less than a second"
    if seconds < 2:
        return "1 second"
    if seconds < 60:
        return f"{int(seconds)} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(seconds / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    for unit, hours_in_unit, below in (("days", 24, 24 * 7 * 2), ("weeks", 24 * 7, 24 * 30 * 2),
                                       ("months", 24 * 30, 24 * 365 * 2)):
        if hours < below:
            return f"{hours // hours_in_unit} {unit}"
    return f"{hours // (24 * 365)} years"


def status_text(record: Record, now: float) -> str:
    if record.status == RUNNING:
        return f"Up {human_duration(now - record.started)}"
    if record.status == EXITED:
        return f"Exited ({record.exit_code}) {human_duration(now - record.finished)} ago"
    if record.status == DEAD:
        return "Dead"
    return "Created"


def parse_port(mapping: str) -> tuple[str, str, str, str]:
    """A record's mapping text -> (hostIP, hostPort, containerPort, proto), as docker shows them."""
    port = contract.parse_port(mapping)
    return port.host_ip or "0.0.0.0", str(port.host_port), str(port.container_port), port.protocol


def ports_text(record: Record) -> str:
    """The PORTS column: "127.0.0.1:8080->80/tcp, ..."."""
    shown = []
    for mapping in record.ports:
        host_ip, host_port, container_port, proto = parse_port(mapping)
        shown.append(f"{host_ip}:{host_port}->{container_port}/{proto}")
    return ", ".join(shown)


def port_lines(record: Record) -> list[str]:
    """`docker port` lines: "80/tcp -> 127.0.0.1:8080"."""
    lines = []
    for mapping in record.ports:
        host_ip, host_port, container_port, proto = parse_port(mapping)
        lines.append(f"{container_port}/{proto} -> {host_ip}:{host_port}")
    return lines


def command_text(record: Record, truncate: bool = True) -> str:
    command = " ".join(record.command)
    if truncate and len(command) > COMMAND_WIDTH:
        command = command[:COMMAND_WIDTH - 1] + "…"
    return f'"{command}"'


def format_table(header: list[str], rows: list[list[str]]) -> str:
    """Left-aligned columns, three spaces apart, as docker prints them."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths)]
        lines.append("   ".join(cells).rstrip())
    return "\n".join(lines)


def ps_table(records: list[Record], now: float, truncate: bool = True) -> str:
    header = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
    rows = [[r.short_id if truncate else r.id, r.image, command_text(r, truncate),
             f"{human_duration(now - r.created)} ago", status_text(r, now), ports_text(r), r.name]
            for r in records]
    return format_table(header, rows)


def format_row(template: str, record: Record, now: float) -> str:
    """`ps --format '{{.Names}}\\t{{.Status}}'`: docker's placeholders, filled in
    (plain substitution, not Go templates; \\t is a tab)."""
    fields = {"ID": record.short_id, "Names": record.name, "Image": record.image,
              "Command": command_text(record), "Status": status_text(record, now),
              "Ports": ports_text(record), "RunningFor": human_duration(now - record.created),
              "CreatedAt": _iso(record.created), "State": record.status}
    return fill_paths(template.replace("\\t", "\t"), fields)


def fill_paths(template: str, document: dict) -> str:
    """`inspect -f '{{.State.Pid}}'`: each {{.A.B}} replaced by that field (JSON if not text)."""
    def field(match):
        value = document
        for key in match.group(1).split("."):
            value = value.get(key, "") if isinstance(value, dict) else ""
        return value if isinstance(value, str) else json.dumps(value)
    return re.sub(r"\{\{\s*\.([A-Za-z0-9_.]+)\s*\}\}", field, template)


def _iso(timestamp: float) -> str:
    if not timestamp:
        return "0001-01-01T00:00:00Z"  # docker's zero time
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc)
    return moment.isoformat().replace("+00:00", "Z")


def inspect_json(record: Record, pid: int, extra: dict | None = None) -> dict:
    """A docker-inspect-like document; the fields a script usually reads."""
    bindings = {}
    for mapping in record.ports:
        host_ip, host_port, container_port, proto = parse_port(mapping)
        bindings.setdefault(f"{container_port}/{proto}", []).append(
            {"HostIp": host_ip, "HostPort": host_port})
    running = record.status == RUNNING
    return {
        "Id": record.id,
        "Created": _iso(record.created),
        "Path": record.command[0] if record.command else "",
        "Args": record.command[1:],
        "State": {
            "Status": record.status if record.status != CREATED else "created",
            "Running": running,
            "Pid": pid if running else 0,
            "ExitCode": record.exit_code or 0,
            "StartedAt": _iso(record.started),
            "FinishedAt": _iso(record.finished),
        },
        "Image": record.image,
        "Name": "/" + record.name,
        "LogPath": str(log_path(record.id)),
        "Bundle": record.bundle,
        "HostConfig": {"AutoRemove": record.auto_remove, "NetworkMode": record.network,
                       "PortBindings": bindings},
        "Config": {"Hostname": record.hostname, "Image": record.image, "Cmd": record.command,
                   "Tty": record.tty, "OpenStdin": record.interactive,
                   "StopSignal": record.stop_signal or "SIGTERM"},
        "NetworkSettings": {"Ports": bindings, **(extra or {})},
    }


def dumps(documents: list[dict]) -> str:
    return json.dumps(documents, indent=4)
