"""Image references as Docker users write them (mocker_common.reference: pure, no I/O)."""

import pytest

from mocker_common.errors import ExitCode
from mocker_common.reference import InvalidReference, parse_reference

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize("text, registry, repository, tag, digest, refname", [
    ("busybox", "docker.io", "library/busybox", "latest", None,
     "docker.io/library/busybox:latest"),
    ("user/app:1.0", "docker.io", "user/app", "1.0", None, "docker.io/user/app:1.0"),
    ("host:5000/a/b:tag", "host:5000", "a/b", "tag", None, "host:5000/a/b:tag"),
    ("localhost/x", "localhost", "x", "latest", None, "localhost/x:latest"),
    ("localhost:5000/x", "localhost:5000", "x", "latest", None, "localhost:5000/x:latest"),
    ("127.0.0.1:5000/library/busybox", "127.0.0.1:5000", "library/busybox", "latest", None,
     "127.0.0.1:5000/library/busybox:latest"),
    (f"busybox@{DIGEST}", "docker.io", "library/busybox", None, DIGEST,
     f"docker.io/library/busybox@{DIGEST}"),
    (f"quay.io/team/app:v2@{DIGEST}", "quay.io", "team/app", "v2", DIGEST,
     f"quay.io/team/app@{DIGEST}"),
    ("index.docker.io/nginx", "docker.io", "library/nginx", "latest", None,
     "docker.io/library/nginx:latest"),
    ("a.b-c/d__e/f-g.h:V_1.2-rc", "a.b-c", "d__e/f-g.h", "V_1.2-rc", None,
     "a.b-c/d__e/f-g.h:V_1.2-rc"),
])
def test_valid_references(text, registry, repository, tag, digest, refname):
    ref = parse_reference(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)
    assert ref.refname == refname


def test_docker_hub_api_host_and_familiar_name():
    ref = parse_reference("busybox")
    assert ref.api_host == "registry-1.docker.io"
    assert ref.familiar_name == "busybox"
    assert parse_reference("user/app").familiar_name == "user/app"
    assert parse_reference("host:5000/a").api_host == "host:5000"


@pytest.mark.parametrize("text, rule", [
    ("", "empty"),
    ("Busybox", "must be lowercase"),
    ("busybox:", "a tag is 1-128"),
    ("busybox:-x", "a tag is 1-128"),
    ("busybox:" + "t" * 129, "a tag is 1-128"),
    ("a//b", "no empty path components"),
    ("a/b/", "no empty path components"),
    ("busybox@sha256:abc", "a digest is sha256"),
    ("busybox@md5:" + "a" * 32, "a digest is sha256"),
    ("https://host/x", "without a URL scheme"),
    ("busy box", "cannot contain spaces"),
    ("-app", "path component '-app'"),
    ("app..x", "path component 'app..x'"),
    ("bad_host.example:5000/x", "is not a valid host"),
    ("host:port/x", "is not a valid host"),
    ("x/" + "a" * 260, "at most 255 characters"),
])
def test_invalid_references_name_the_rule(text, rule):
    with pytest.raises(InvalidReference) as caught:
        parse_reference(text)
    assert rule in str(caught.value)
    assert caught.value.code == ExitCode.USAGE
