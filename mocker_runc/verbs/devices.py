"""mocker-runc devices: the device rules and the cgroup v2 eBPF program made of them."""

import json
import os

from .. import container
from .. import spec as specs

HELP = "print the device rules and their cgroup v2 eBPF program"


def add_arguments(p):
    p.add_argument("id", metavar="CONTAINER_ID", nargs="?",
                   help="show the program the kernel holds for this container's cgroup")
    p.add_argument("-b", "--bundle", default=".", help="else: the bundle's config.json (default: .)")


def run(store, args):
    from ..cgroups import devicebpf, devicefilter, devices as dev
    if args.id:
        cg = container.cgroup_of(store.load(args.id))
        if cg.version != 2:
            print(f"cgroup v1: {cg.paths['devices']}/devices.list")
            print(open(os.path.join(cg.paths["devices"], "devices.list")).read(), end="")
            return
        for prog_id in devicefilter.attached(cg.path):
            name, insns = devicefilter.dump(prog_id)
            print(f"program {prog_id} ({name}) on {cg.path}, as the kernel holds it:")
            print(devicebpf.listing(insns))
        return
    try:
        with open(os.path.join(args.bundle, "config.json")) as f:
            linux = json.load(f).get("linux") or {}
    except (OSError, ValueError) as err:
        raise specs.SpecError(f"cannot read {args.bundle}/config.json: {err}") from None
    rules = dev.effective_rules((linux.get("resources") or {}).get("devices"), linux.get("devices"))
    ruleset = dev.normalize(rules)
    print("rules, in order (the config's, then runc's defaults):")
    print("".join(f"  {'allow' if r.allow else 'deny '} {r}\n" for r in rules), end="")
    print(f"default: {'allow' if ruleset.default_allow else 'deny'}; exceptions:")
    print("".join(f"  {'allow' if r.allow else 'deny '} {r}\n" for r in ruleset.exceptions), end="")
    print(f"BPF_PROG_TYPE_CGROUP_DEVICE program (license {devicebpf.LICENSE}):")
    print(devicebpf.listing(devicebpf.program(ruleset)))
