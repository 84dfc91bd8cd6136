"""`mocker-bundle --explain IMAGE [CMD…]`: the bundle as a shell script (tar, mount, jq).

The script unpacks the layers from $LAYOUT, mounts them as one overlay
rootfs, and writes config.json: the part that does not depend on the image
is computed here by the same converter mocker-bundle uses (convert.py); the
image's own settings (Entrypoint, Cmd, Env, WorkingDir, User) are merged in
by jq once the script has the image's config.
"""

import json
import shlex
from pathlib import Path

from mocker_common.explain import RawShell, fill, short_json

from .bundle import host_defaults
from .convert import runtime_config
from .options import BundleOptions

TOOLS = ["tar", "jq", "mount", "find"]

PART = r"""
# ==== mocker-bundle: OCI image layout -> runtime bundle (rootfs/ + config.json) ====
# image-spec conversion.md and layer.md; mocker_bundle/bundle.py
BUNDLE=$WORK/bundle
mkdir -p "$BUNDLE/rootfs" "$BUNDLE/upper" "$BUNDLE/work"
LAYOUT=${LAYOUT:-@STORE@}
MANIFEST_FILE=$LAYOUT/blobs/sha256/$(jq -r --arg name @REFNAME@ \
    '[.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $name)][0].digest
     // .manifests[0].digest' "$LAYOUT/index.json" | cut -d: -f2)
IMAGE_CONFIG=$LAYOUT/blobs/sha256/$(jq -r .config.digest "$MANIFEST_FILE" | cut -d: -f2)

# image-spec layer.md: each layer is a tar (gzip or zstd: tar finds out), unpacked
# in order. mocker_bundle/extract.py also refuses entries that would write
# through a link out of the layer; GNU tar refuses ".." and absolute names.
lowers=""
n=0
for layer in $(jq -r '.layers[].digest' "$MANIFEST_FILE"); do
    dir=$WORK/layers/$n
    mkdir -p "$dir"
    tar -xf "$LAYOUT/blobs/sha256/${layer#sha256:}" -C "$dir" --numeric-owner --same-permissions
    # layer.md "Whiteouts": .wh.NAME deletes NAME below; .wh..wh..opq hides all
    # below. Kept as overlayfs spells them: a 0:0 char device, an xattr.
    # (-exec, not a pipe into `read`: a name may hold a newline.)
    find "$dir" -name '.wh.*' -exec sh -c '
        for wh; do
            parent=${wh%/*} name=${wh##*/}
            rm -f "$wh"
            if [ "$name" = .wh..wh..opq ]; then
                command -v setfattr >/dev/null || { echo "explain: this image needs setfattr (package attr)" >&2; exit 127; }
                setfattr -n trusted.overlay.opaque -v y "$parent"
            else
                mknod "$parent/${name#.wh.}" c 0 0
            fi
        done' sh {} +
    lowers=$dir${lowers:+:$lowers}   # overlayfs: the topmost lower layer comes first
    n=$((n + 1))
done

# The rootfs: the layers read-only, the container's writes in upper/.
# overlayfs.rst; mocker_bundle/mount.py
[ -n "$lowers" ] || { mkdir -p "$WORK/layers/empty"; lowers=$WORK/layers/empty; }
mount -t overlay overlay -o "lowerdir=$lowers,upperdir=$BUNDLE/upper,workdir=$BUNDLE/work" "$BUNDLE/rootfs"
on_exit "umount '$BUNDLE/rootfs'"

# config.json: runtime-spec config.md. Docker's defaults and the options, as
# mocker_bundle/convert.py makes them, then the image's settings (conversion.md)
# merged with jq: Entrypoint + Cmd, Env, WorkingDir, User.
# Left out here: linux.seccomp, Docker's profile (@ALLOWED@ system calls allowed,
# every other answered with an error; mocker_bundle/seccomp_profile.py), and the
# hooks that call mocker-net: this script's mocker-net part does that.
cat >"$WORK/base.json" <<'BASE_CONFIG'
@BASE@
BASE_CONFIG
user=$(jq -r '.config.User // ""' "$IMAGE_CONFIG")
@USER_OVERRIDE@
uid=${user%%:*} gid=${user#*:}
case $user in *:*) ;; *) gid="";; esac
case $uid in
    "") uid=0 ;;
    *[!0-9]*) uid=$(awk -F: -v u="$uid" '$1 == u {print $3}' "$BUNDLE/rootfs/etc/passwd") ;;
esac
home=$(awk -F: -v u="$uid" '$3 == u {print $6; exit}' "$BUNDLE/rootfs/etc/passwd" 2>/dev/null)
[ -n "$gid" ] || gid=$(awk -F: -v u="$uid" '$3 == u {print $4; exit}' "$BUNDLE/rootfs/etc/passwd" 2>/dev/null)
# The groups /etc/group lists the user in (mocker_bundle/users.py).
name=$(awk -F: -v u="$uid" '$3 == u {print $1; exit}' "$BUNDLE/rootfs/etc/passwd" 2>/dev/null)
groups=$(awk -F: -v n="$name" -v g="${gid:-0}" '$3 != g && ("," $4 ",") ~ ("," n ",") {printf "%s%s", s, $3; s=","}' \
         "$BUNDLE/rootfs/etc/group" 2>/dev/null)
jq --slurpfile image "$IMAGE_CONFIG" --argjson command @COMMAND@ --argjson entrypoint @ENTRYPOINT@ \
   --argjson env @ENV@ --arg workdir @WORKDIR@ --argjson uid "$uid" --argjson gid "${gid:-0}" \
   --arg home "${home:-/}" --argjson groups "[${groups}]" --argjson defaults @DEFAULT_ENV@ '
    ($image[0].config // {}) as $c
    | .process.args = (if $entrypoint != null then $entrypoint + $command
                       else ($c.Entrypoint // []) + (if $command != [] then $command else ($c.Cmd // []) end) end)
    | .process.env = (reduce (($c.Env // []) + $env)[] as $e ({};
                          . + {($e | split("=")[0]): ($e | sub("^[^=]*="; ""))})
                      | . as $set | . + ($defaults + {HOME: $home} | with_entries(select(.key as $k | $set | has($k) | not)))
                      | to_entries | map("\(.key)=\(.value)"))
    | .process.cwd = (if $workdir != "" then $workdir else (($c.WorkingDir // "") | if . == "" then "/" else . end) end)
    | .process.user = ({uid: $uid, gid: $gid} + (if $groups != [] then {additionalGids: $groups} else {} end))
    ' "$WORK/base.json" >"$BUNDLE/config.json"
mkdir -p "$BUNDLE/rootfs$(jq -r .process.cwd "$BUNDLE/config.json")"
echo "bundle: $BUNDLE ($(jq -r '.process.args | join(" ")' "$BUNDLE/config.json"))" >&2
"""


def part(refname: str, opts: BundleOptions, store: str) -> str:
    # The converter needs an image config; the script merges in the real one.
    opts = host_defaults(opts, Path("/nonexistent"))
    base = runtime_config({"config": {"Cmd": ["(from the image)"]}}, opts)
    # Docker's seccomp profile is ~900 lines of JSON that a shell cannot load
    # anyway: the script says what it holds instead of printing it.
    seccomp = base["linux"].pop("seccomp", None) or {}
    base.pop("hooks", None)   # the network: the mocker-net part of the script, not a hook
    allowed = sum(len(rule.get("names", [])) for rule in seccomp.get("syscalls", [])
                  if rule.get("action") == "SCMP_ACT_ALLOW")
    defaults = {k: v for k, _, v in (e.partition("=") for e in base["process"]["env"])
                if k in ("PATH", "HOSTNAME", "TERM")}
    user = "" if opts.user is None else f"user={shlex.quote(opts.user)}"
    return fill(PART, STORE=store, REFNAME=refname, BASE=RawShell(short_json(base)),
                COMMAND=json.dumps(list(opts.command)),
                ENTRYPOINT=json.dumps(None if opts.entrypoint is None else
                                      [opts.entrypoint] if opts.entrypoint else []),
                ENV=json.dumps(list(opts.env)), WORKDIR=opts.workdir or "",
                DEFAULT_ENV=json.dumps(defaults), USER_OVERRIDE=RawShell(user),
                ALLOWED=RawShell(str(allowed)))

