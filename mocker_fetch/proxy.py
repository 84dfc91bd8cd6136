"""Which proxy a request goes through: the environment, read as Docker's client
and every Go program read it (golang.org/x/net/http/httpproxy), not as curl or
Python's urllib do.

    HTTPS_PROXY / https_proxy   for https:// URLs   (upper case wins)
    HTTP_PROXY  / http_proxy    for http:// URLs
    NO_PROXY    / no_proxy      comma-separated exceptions:
        *                   no proxy at all
        198.51.100.0/24     an IP range (CIDR, IPv4 or IPv6)
        198.51.100.7        an IP;  with :PORT only that port
        example.com         that host and its subdomains;  .example.com  only the subdomains
        example.com:5000    ... only on that port

localhost and loopback addresses (127.0.0.0/8, ::1) never go through a proxy.
A proxy is http://, https:// (TLS to the proxy itself) or socks5:// (host names
are resolved by the proxy, as Go's SOCKS5 dialer does: requests calls that
socks5h://). A proxy without a scheme is http://.

A proxy URL may carry user:password@; `redact` is how it is ever shown.
"""

import ipaddress
import os
from urllib.parse import urlsplit

from mocker_common.record import FrozenRecord

_SCHEMES = ("http", "https", "socks5", "socks5h")
_DEFAULT_PORTS = {"http": "80", "https": "443"}


class NoProxy(FrozenRecord):
    """One NO_PROXY entry, parsed."""
    network: object = None    # an ipaddress network (a CIDR or one IP), or None
    domain: str = ""          # ".example.com" for a name entry
    exact_too: bool = False   # the entry was "example.com": it matches the name itself too
    port: str = ""            # "" for any port


def environ_proxy(scheme: str, environ=None) -> str:
    """The proxy URL named for scheme, "" for none (HTTPS_PROXY before https_proxy)."""
    environ = os.environ if environ is None else environ
    name = "HTTPS_PROXY" if scheme == "https" else "HTTP_PROXY"
    if name == "HTTP_PROXY" and environ.get("REQUEST_METHOD"):
        return ""   # a CGI program: HTTP_PROXY may be a request's "Proxy:" header (httpoxy)
    return environ.get(name) or environ.get(name.lower()) or ""


def proxy_for(url: str, environ=None) -> str | None:
    """The proxy URL (for requests) to reach url through, or None to go direct."""
    environ = os.environ if environ is None else environ
    parts = urlsplit(url)
    proxy = environ_proxy(parts.scheme, environ)
    if not proxy:
        return None
    host = (parts.hostname or "").lower()
    port = str(parts.port or _DEFAULT_PORTS.get(parts.scheme, ""))
    no_proxy = environ.get("NO_PROXY") or environ.get("no_proxy") or ""
    if not use_proxy(host, port, parse_no_proxy(no_proxy)):
        return None
    return normalize(proxy)


def normalize(proxy: str) -> str:
    """A proxy URL with a scheme requests knows; socks5 resolves names at the proxy."""
    scheme = proxy.split("://", 1)[0].lower() if "://" in proxy else ""
    if scheme not in _SCHEMES:
        proxy = "http://" + proxy
    elif scheme == "socks5":
        proxy = "socks5h://" + proxy.split("://", 1)[1]
    try:
        parts = urlsplit(proxy)
        if not parts.hostname:
            raise ValueError("no host")
        parts.port   # raises ValueError for a port that is not a number
    except ValueError:
        from mocker_common.errors import MockerError, ExitCode
        raise MockerError(f"the proxy {_redact_text(proxy)} named by the environment is not "
                          "a URL (want [http://|https://|socks5://][user:pass@]host[:port])",
                          ExitCode.USAGE) from None
    return proxy


def use_proxy(host: str, port: str, entries: list[NoProxy]) -> bool:
    """False for loopback and for a host (and port) that a NO_PROXY entry names."""
    if host == "localhost":
        return False
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None and ip.is_loopback:
        return False
    for entry in entries:
        if entry.port and entry.port != port:
            continue
        if entry.network is not None:
            if ip is not None and ip.version == entry.network.version and ip in entry.network:
                return False
        elif entry.domain == "*" or host.endswith(entry.domain) or (
                entry.exact_too and host == entry.domain[1:]):
            return False
    return True


def parse_no_proxy(text: str) -> list[NoProxy]:
    entries = []
    for item in (part.strip().lower() for part in text.split(",")):
        if not item:
            continue
        if item == "*":
            return [NoProxy(domain="*")]
        try:   # a CIDR range
            if "/" in item:
                entries.append(NoProxy(network=ipaddress.ip_network(item, strict=False)))
                continue
        except ValueError:
            pass
        host, port = _split_port(item)
        try:
            entries.append(NoProxy(network=ipaddress.ip_network(host), port=port))
            continue
        except ValueError:
            pass
        if host.startswith("*."):
            host = host[1:]
        exact_too = not host.startswith(".")
        entries.append(NoProxy(domain=host if host.startswith(".") else "." + host,
                               exact_too=exact_too, port=port))
    return entries


def _split_port(item: str) -> tuple[str, str]:
    """"host:port", "[v6]:port", "v6" (no port: more than one colon) -> (host, port)."""
    if item.startswith("["):
        host, _, rest = item[1:].partition("]")
        return host, rest[1:] if rest.startswith(":") else ""
    if item.count(":") == 1:
        host, _, port = item.partition(":")
        return host, port
    return item, ""


def redact(url: str) -> str:
    """A proxy URL fit to print: its password replaced (Go's url.Redacted does the same)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username}:xxxxx@{netloc}").geturl()


def _redact_text(url: str) -> str:
    """redact() for a URL that may not even parse: drop everything before the last @."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{'xxxxx@' if '@' in rest else ''}{rest.rpartition('@')[2]}"


def secrets_in_environment(environ=None) -> list[str]:
    """The passwords of every proxy the environment names: never to be printed."""
    environ = os.environ if environ is None else environ
    found = []
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy",
                 "ALL_PROXY", "all_proxy"):
        value = environ.get(name)
        if value and "@" in value:
            try:
                password = urlsplit(normalize(value)).password
            except ValueError:
                continue
            if password:
                from urllib.parse import unquote
                found += [password, unquote(password)]
    return [s for s in found if s]


def scrub(text: str, environ=None) -> str:
    """text with any proxy password from the environment replaced by xxxxx."""
    for secret in secrets_in_environment(environ):
        text = text.replace(secret, "xxxxx")
    return text
