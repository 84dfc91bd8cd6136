"""Credential helpers: the docker-credential-helpers protocol, as Docker speaks it.

`docker login` with a `credsStore` (all registries) or a `credHelpers` entry
(one registry) in ~/.docker/config.json keeps the secret in a keychain, not in
the file. To read it, run the helper program `docker-credential-NAME get`,
write the registry's server URL on its stdin, and read on its stdout:

    {"ServerURL": "registry.example", "Username": "ann", "Secret": "..."}

A helper that knows nothing for that server says "credentials not found in
native keychain" and exits non-zero: then the pull goes on anonymously, as
Docker's does.
"""

import json
import subprocess

from mocker_common.errors import MockerError

from .credentials import Credentials

TIMEOUT = 60          # seconds: a helper may ask a desktop keychain to unlock
NOT_FOUND = "credentials not found"


def helper_credentials(name: str, server_url: str) -> Credentials | None:
    """Ask the helper `docker-credential-<name>` for server_url's credentials."""
    program = f"docker-credential-{name}"
    try:
        result = subprocess.run([program, "get"], input=server_url, capture_output=True,
                                text=True, timeout=TIMEOUT)
    except FileNotFoundError:
        raise MockerError(f"credential helper {program} is not installed "
                          "(named by ~/.docker/config.json)") from None
    except (OSError, subprocess.TimeoutExpired) as err:
        raise MockerError(f"credential helper {program} failed: {err}") from None
    said = (result.stdout.strip() or result.stderr.strip()).splitlines()
    if result.returncode != 0:
        if said and NOT_FOUND in said[0].lower():
            return None
        reason = said[0] if said else f"exit status {result.returncode}"
        raise MockerError(f"credential helper {program} failed for {server_url}: {reason}")
    return _parse_answer(result.stdout, program)


def _parse_answer(text: str, program: str) -> Credentials | None:
    try:
        answer = json.loads(text)
        username, secret = answer["Username"], answer["Secret"]
    except (ValueError, KeyError, TypeError):
        raise MockerError(f"credential helper {program} did not answer with "
                          "JSON holding Username and Secret") from None
    if not isinstance(username, str) or not isinstance(secret, str):
        raise MockerError(f"credential helper {program} answered with a non-string "
                          "Username or Secret")
    if username == "<token>":
        # An identity token (OAuth2 refresh token) for the token server, which
        # mocker-fetch does not speak yet: say so rather than send it as a password.
        raise MockerError(f"credential helper {program} holds an identity token for "
                          "this registry; log in with a password, or use --creds")
    return Credentials(username, secret) if username or secret else None


def helper_store(name: str, server_url: str, credentials: Credentials) -> None:
    """`docker-credential-NAME store`: the server, user and secret as JSON on stdin."""
    document = json.dumps({"ServerURL": server_url, "Username": credentials.username,
                           "Secret": credentials.password})
    _run(name, "store", document, server_url)


def helper_erase(name: str, server_url: str) -> bool:
    """`docker-credential-NAME erase`: the server on stdin. False if it held nothing."""
    return _run(name, "erase", server_url, server_url, missing_ok=True)


def _run(name: str, verb: str, stdin: str, server_url: str, missing_ok: bool = False) -> bool:
    program = f"docker-credential-{name}"
    try:
        result = subprocess.run([program, verb], input=stdin, capture_output=True, text=True,
                                timeout=TIMEOUT)
    except FileNotFoundError:
        raise MockerError(f"credential helper {program} is not installed "
                          "(named by ~/.docker/config.json)") from None
    except (OSError, subprocess.TimeoutExpired) as err:
        raise MockerError(f"credential helper {program} failed: {err}") from None
    if result.returncode != 0:
        said = (result.stdout.strip() or result.stderr.strip()).splitlines()
        if missing_ok and said and NOT_FOUND in said[0].lower():
            return False
        reason = said[0] if said else f"exit status {result.returncode}"
        raise MockerError(f"credential helper {program} could not {verb} the credentials "
                          f"for {server_url}: {reason}")
    return True
