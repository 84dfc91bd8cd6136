"""--device: what the host's node is (type, numbers, mode, owner), read with stat(2)."""

import os
import stat

from mocker_common.errors import MockerError

from .options import Device


def host_device(device: Device) -> Device:
    """Fill in device from the host's node; a clear error if it is not a device."""
    try:
        st = os.stat(device.host)
    except OSError as err:
        raise MockerError(f"--device {device.host}: {err.strerror}") from None
    if stat.S_ISCHR(st.st_mode):
        kind = "c"
    elif stat.S_ISBLK(st.st_mode):
        kind = "b"
    else:
        # Docker also takes a directory of devices; mocker takes one node at a time.
        raise MockerError(f"--device {device.host}: not a character or block device")
    return device.replace(type=kind, major=os.major(st.st_rdev), minor=os.minor(st.st_rdev),
                           mode=stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid)
