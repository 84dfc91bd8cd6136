"""User and group lookup in a rootfs's /etc/passwd and /etc/group (pure parsing).

image-spec config.md, `User`: "user", "uid", "user:group", "uid:gid",
"uid:group", "user:gid"; names are resolved inside the container's own files,
never the host's. A user given by name (and no group) also gets the
supplementary groups that list it as a member.
"""


from mocker_common.errors import MockerError
from mocker_common.record import FrozenRecord


class ExecUser(FrozenRecord):
    uid: int
    gid: int
    additional_gids: list
    home: str


def _records(text: str | None, fields: int):
    for line in (text or "").splitlines():
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) >= fields:
            yield parts


def resolve_user(spec: str, passwd: str | None, group: str | None) -> ExecUser:
    """The uid, gid, supplementary gids and home directory that `spec` names."""
    user_part, _, group_part = (spec or "").partition(":")
    entry = _find_passwd(user_part or "0", passwd)
    if entry is None:
        if not user_part.isdigit() and user_part:
            raise MockerError(f"user {user_part!r} not found in the image's /etc/passwd")
        uid, gid, home, name = int(user_part or 0), 0, "/", None
    else:
        name, uid, gid, home = entry[0], int(entry[2]), int(entry[3]), entry[5] or "/"
    if group_part:
        gid = _find_gid(group_part, group)
    # image-spec conversion.md: additionalGids only for a user given by name, without a group.
    by_name = bool(user_part) and not user_part.isdigit() and not group_part
    extra = _member_gids(name, group) if by_name else []
    return ExecUser(uid, gid, sorted(set(extra) - {gid}), home)


def _find_passwd(user: str, passwd: str | None):
    for parts in _records(passwd, 7):
        if parts[0] == user or (user.isdigit() and parts[2] == user):
            return parts
    return None


def _find_gid(group_name: str, group: str | None) -> int:
    if group_name.isdigit():
        return int(group_name)
    for parts in _records(group, 4):
        if parts[0] == group_name:
            return int(parts[2])
    raise MockerError(f"group {group_name!r} not found in the image's /etc/group")


def _member_gids(user: str, group: str | None) -> list[int]:
    return [int(parts[2]) for parts in _records(group, 4)
            if user in parts[3].split(",")]
