"""`mocker-fetch --explain IMAGE`: the pull as a shell script (curl, jq, sha256sum).

The script writes an OCI image layout to $LAYOUT, as mocker-fetch does to
its store. See mocker_common/explain.py for how the parts fit together.
"""

from urllib.parse import urlsplit

from mocker_common import mediatypes as mt
from mocker_common.explain import fill
from mocker_common.reference import parse_reference

from .config import hub_mirrors
from .manifest import host_platform
from .trust import is_loopback

TOOLS = ["curl", "jq", "sha256sum"]

PART = r"""
# ==== mocker-fetch: registry -> OCI image layout ====
# distribution-spec "Pulling manifests" and "Pulling blobs"; mocker_fetch/pull.py
REGISTRY=@URL@ REPO=@REPO@ REF=@REF@
LAYOUT=$WORK/image
mkdir -p "$LAYOUT/blobs/sha256"
# image-spec image-layout.md: the marker file that says "this is a layout".
printf '{"imageLayoutVersion": "1.0.0"}' >"$LAYOUT/oci-layout"

# distribution-spec "Authentication" (Docker's token flow); mocker_fetch/auth.py.
# Ask /v2/; a 401 names a token server: ask it for a pull token for this repository.
AUTH=""
challenge=$(curl -sS -o /dev/null -D - "$REGISTRY/v2/" | tr -d '\r' |
            sed -n 's/^[Ww][Ww][Ww]-[Aa]uthenticate: *Bearer *//p')
if [ -n "$challenge" ]; then
    realm=$(printf '%s\n' "$challenge" | sed -n 's/.*realm="\([^"]*\)".*/\1/p')
    service=$(printf '%s\n' "$challenge" | sed -n 's/.*service="\([^"]*\)".*/\1/p')
    token=$(curl -sSf "$realm?service=$service&scope=repository:$REPO:pull" |
            jq -r '.token // .access_token')
    AUTH="Authorization: Bearer $token"
fi
get() { curl -sSfL -H "${AUTH:-X-No-Auth: 1}" "$@"; }

# Every blob is checked against its digest before it is kept (image-spec
# descriptor.md "Digests"); mocker_fetch/sink.py. A bad one is never stored.
keep_blob() {  # keep_blob FILE SHA256: move FILE into the layout if its digest matches
    echo "$2  $1" | sha256sum -c --status - || { rm -f "$1"; echo "explain: digest mismatch for sha256:$2" >&2; exit 1; }
    mv "$1" "$LAYOUT/blobs/sha256/$2"
}
blob() {  # blob DIGEST: download a blob by digest, checked
    get "$REGISTRY/v2/$REPO/blobs/$1" -o "$WORK/blob.part"
    keep_blob "$WORK/blob.part" "${1#sha256:}"
}
manifest() {  # manifest REF: download a manifest or index as it is
    get -H @ACCEPT@ "$REGISTRY/v2/$REPO/manifests/$1" -o "$WORK/manifest.part"
}

# The tag names an index (several platforms) or one manifest.
manifest "$REF"
top=$(sha256sum "$WORK/manifest.part" | cut -d' ' -f1)
case $REF in sha256:*) [ "sha256:$top" = "$REF" ] || { echo "explain: the registry sent another manifest than $REF" >&2; exit 1; } ;; esac
# (An index has "manifests"; its mediaType may be missing, or Docker's list type.)
case $(jq -r 'if .manifests then "index" else "manifest" end' "$WORK/manifest.part") in
    index)
        # image-spec image-index.md: pick this machine's platform; mocker_fetch/manifest.py
        keep_blob "$WORK/manifest.part" "$top"
        MANIFEST=$(jq -r --arg os @OS@ --arg arch @ARCH@ \
            '[.manifests[] | select(.platform.os == $os and .platform.architecture == $arch)][0].digest // empty' \
            "$LAYOUT/blobs/sha256/$top")
        [ -n "$MANIFEST" ] || { echo "explain: no image for @OS@/@ARCH@" >&2; exit 1; }
        manifest "$MANIFEST"
        keep_blob "$WORK/manifest.part" "${MANIFEST#sha256:}" ;;
    *)
        keep_blob "$WORK/manifest.part" "$top"
        MANIFEST=sha256:$top ;;
esac
MANIFEST_FILE=$LAYOUT/blobs/sha256/${MANIFEST#sha256:}

# image-spec manifest.md: the config, then each layer, by digest.
blob "$(jq -r .config.digest "$MANIFEST_FILE")"
for layer in $(jq -r '.layers[].digest' "$MANIFEST_FILE"); do
    blob "$layer"
done

# image-spec image-layout.md "index.json": name the image; mocker_fetch/layout.py
jq -n --arg type "$(jq -r --arg oci @OCI_MANIFEST@ '.mediaType // $oci' "$MANIFEST_FILE")" --arg digest "$MANIFEST" \
      --argjson size "$(wc -c <"$MANIFEST_FILE")" --arg name @REFNAME@ \
      '{schemaVersion: 2, manifests: [{mediaType: $type, digest: $digest, size: $size,
        annotations: {"org.opencontainers.image.ref.name": $name}}]}' >"$LAYOUT/index.json"
echo "pulled @REFNAME@ ($MANIFEST)" >&2
"""


def part(image: str, mirrors: list[str] | None = None) -> str:
    ref = parse_reference(image)
    # A Docker Hub image comes from the first mirror, if one is set (config.py).
    host = ref.api_host
    for mirror in hub_mirrors(ref, mirrors)[:1]:
        host = urlsplit(mirror if "//" in mirror else f"//{mirror}").netloc
    # Docker and mocker-fetch speak plain HTTP to a loopback registry, TLS elsewhere.
    scheme = "http" if is_loopback(host) else "https"
    platform = host_platform()
    accept = ",".join([mt.OCI_INDEX, mt.OCI_MANIFEST, mt.DOCKER_LIST, mt.DOCKER_MANIFEST])
    return fill(PART, URL=f"{scheme}://{host}", REPO=ref.repository,
                REF=ref.manifest_key, REFNAME=ref.refname, ACCEPT=f"Accept: {accept}",
                OCI_MANIFEST=mt.OCI_MANIFEST,
                OS=platform.os, ARCH=platform.architecture)
