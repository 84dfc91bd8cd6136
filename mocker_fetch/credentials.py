"""A user name and password (or token) for a registry, wherever they came from:
an auth file, a credential helper, `mocker-fetch login`, the command line."""

import base64

from mocker_common.record import FrozenRecord


class Credentials(FrozenRecord):
    username: str
    password: str

    def basic_header(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()
