"""The calls mocker-runc makes to systemd over D-Bus (org.freedesktop.systemd1.Manager).

systemd's manager object on the system bus starts, stops and changes units;
org.freedesktop.systemd1(5) documents the methods used here. A unit's start
or stop is a job: the method returns the job's object path at once, and the
Manager's JobRemoved signal says later how the job ended ("done", "failed",
...), so we listen for that signal before asking.

jeepney speaks the D-Bus wire protocol; it is loaded only here, so only
--systemd-cgroup pays for it (docs/runc.md has the measurements).
"""

import os
from collections import deque

from mocker_common.errors import MockerError, Unreachable

SYSTEMD_RUNNING = "/run/systemd/system"    # sd_booted(3): this host was booted by systemd
_DEST = "org.freedesktop.systemd1"
_PATH = "/org/freedesktop/systemd1"
_MANAGER = "org.freedesktop.systemd1.Manager"
JOB_TIMEOUT = 30.0   # seconds, as runc waits
AUTH_TIMEOUT = 10.0


class SystemdError(MockerError):
    """systemd refused a call (the D-Bus error's name is kept for callers to test)."""

    def __init__(self, message: str, name: str = ""):
        super().__init__(message)
        self.name = name


class Systemd:
    """One connection to the system bus, talking to systemd's manager."""

    def __init__(self):
        if not os.path.isdir(SYSTEMD_RUNNING):
            raise Unreachable("systemd is not running on this host (no /run/systemd/system): "
                              "cannot use --systemd-cgroup")
        from jeepney import DBusAddress
        from jeepney.io.blocking import open_dbus_connection
        try:
            # the first client may have to wait for dbus-daemon to start (socket activation)
            self._conn = open_dbus_connection(bus="SYSTEM", auth_timeout=AUTH_TIMEOUT)
        except (OSError, TimeoutError) as err:
            address = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS") or "/run/dbus/system_bus_socket"
            reason = getattr(err, "strerror", None) or err
            raise Unreachable(f"cannot reach the D-Bus system bus at {address} ({reason}): "
                              "--systemd-cgroup needs systemd's D-Bus API (is dbus running?)") from None
        self._manager = DBusAddress(_PATH, bus_name=_DEST, interface=_MANAGER)
        self._version = None

    def close(self) -> None:
        self._conn.close()

    # -- the methods ---------------------------------------------------------------

    def start_transient_unit(self, name: str, properties: list[tuple]) -> None:
        """StartTransientUnit(name, "replace", properties, []) and wait for its job."""
        self._run_job("StartTransientUnit", "ssa(sv)a(sa(sv))",
                      (name, "replace", _variants(properties), []), name)

    def stop_unit(self, name: str) -> str:
        """StopUnit(name, "replace"), waited for; the job's result ("done", ...)."""
        return self._run_job("StopUnit", "ss", (name, "replace"), name, must_succeed=False)

    def reset_failed_unit(self, name: str) -> None:
        """Let systemd forget a failed unit (else its name stays taken)."""
        self._call("ResetFailedUnit", "s", (name,))

    def set_unit_properties(self, name: str, properties: list[tuple]) -> None:
        """SetUnitProperties(name, runtime=true, properties): for the unit's life only."""
        self._call("SetUnitProperties", "sba(sv)", (name, True, _variants(properties)))

    def unit_active_state(self, name: str) -> str:
        """The unit's ActiveState ("active", "inactive", ...), or "" if systemd has no such unit."""
        try:
            (path,) = self._call("GetUnit", "s", (name,))
        except SystemdError as err:
            if err.name.endswith(".NoSuchUnit"):
                return ""
            raise
        return self._property(path, "org.freedesktop.systemd1.Unit", "ActiveState")

    def version(self) -> int:
        """systemd's version number (252 for "252.39-1~deb12u2"); 0 if unknown."""
        if self._version is None:
            text = self._property(_PATH, _MANAGER, "Version").lstrip("v")
            digits = text[:len(text) - len(text.lstrip("0123456789"))]
            self._version = int(digits) if digits else 0
        return self._version

    # -- plumbing ----------------------------------------------------------------------

    def _call(self, method: str, signature: str, args: tuple, path: str = _PATH,
              interface: str = _MANAGER) -> tuple:
        from jeepney import DBusAddress, new_method_call
        address = self._manager if path == _PATH and interface == _MANAGER else \
            DBusAddress(path, bus_name=_DEST, interface=interface)
        reply = self._conn.send_and_get_reply(new_method_call(address, method, signature, args),
                                              timeout=JOB_TIMEOUT)
        return _unwrap(reply, method, args)

    def _property(self, path: str, interface: str, name: str):
        (variant,) = self._call("Get", "ss", (interface, name), path=path,
                                interface="org.freedesktop.DBus.Properties")
        return variant[1]

    def _run_job(self, method: str, signature: str, args: tuple, unit: str,
                 must_succeed: bool = True) -> str:
        """Call a method that queues a job, and wait for the job's JobRemoved signal."""
        from jeepney import MatchRule, message_bus
        # no sender= in the rule: signals carry systemd's unique name (":1.0"),
        # not org.freedesktop.systemd1, and jeepney matches on the header itself
        rule = MatchRule(type="signal", path=_PATH, interface=_MANAGER, member="JobRemoved")
        signals = deque()
        with self._conn.filter(rule, queue=signals):
            _unwrap(self._conn.send_and_get_reply(message_bus.AddMatch(rule)), "AddMatch", ())
            # systemd sends job signals to the client that asked for the job (and to subscribers)
            (job,) = self._call(method, signature, args)
            result = self._wait_job(job, signals, unit)
        if result != "done" and must_succeed:
            raise SystemdError(f"systemd could not {method_verb(method)} unit {unit}: job {result}")
        return result

    def _wait_job(self, job: str, signals: deque, unit: str) -> str:
        import time
        deadline = time.monotonic() + JOB_TIMEOUT
        while True:
            while signals:
                _id, path, _unit, result = signals.popleft().body   # JobRemoved(u id, o job, s unit, s result)
                if path == job:
                    return result
            left = deadline - time.monotonic()
            if left <= 0:
                raise SystemdError(f"timed out after {JOB_TIMEOUT:.0f}s waiting for systemd's job on {unit}")
            try:
                self._conn.recv_messages(timeout=left)   # fills the filters' queues
            except TimeoutError:
                pass


def method_verb(method: str) -> str:
    return {"StartTransientUnit": "start", "StopUnit": "stop"}.get(method, method)


def _variants(properties: list[tuple]) -> list[tuple]:
    """(name, signature, value) triples as D-Bus a(sv): (name, (signature, value))."""
    return [(name, (signature, value)) for name, signature, value in properties]


def _unwrap(reply, method: str, args: tuple) -> tuple:
    """The reply's body, or a one-line SystemdError for a D-Bus error reply."""
    from jeepney import HeaderFields, MessageType
    if reply.header.message_type == MessageType.error:
        name = reply.header.fields.get(HeaderFields.error_name, "")
        detail = reply.body[0] if reply.body else name
        what = f" {args[0]}" if args and isinstance(args[0], str) else ""
        raise SystemdError(f"systemd {method}{what}: {detail}", name)
    return reply.body
