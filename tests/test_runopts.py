"""docker run's options come from one table (mocker_common/runopts.py).

What each program of `mocker run` accepts, what `mocker run --help` lists and
what bash completes are checked against it here; test_mocker.py runs a
container with every option.
"""

import importlib.machinery
import importlib.util
import os
import subprocess
from pathlib import Path

import pytest

from mocker_bundle.cli import build_parser as bundle_parser
from mocker_common import runopts
from mocker_engine import cli as engine_cli

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = {"number": "7", "other": "x"}


def gen_runopts():
    loader = importlib.machinery.SourceFileLoader("gen_runopts", str(ROOT / "scripts/gen-runopts"))
    spec = importlib.util.spec_from_loader("gen_runopts", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_the_generated_shell_blocks_are_up_to_date():
    done = subprocess.run([str(ROOT / "scripts/gen-runopts"), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_hand_edited_block_is_written_back():
    gen = gen_runopts()
    text = (ROOT / "bin/mocker").read_text()
    tampered = text.replace("--pids-limit) needs_value", "--pids-limit) shift")
    assert tampered != text
    assert gen.rewrite(tampered, "parsing", gen.wrapper_case_arms()) == text


def test_mocker_run_help_lists_every_option():
    done = subprocess.run([str(ROOT / "bin/mocker"), "run", "--help"], capture_output=True, text=True,
                          env=dict(os.environ, MOCKER_PYTHON="python3"))
    assert done.returncode == 0, done.stderr
    for option in runopts.RUN_OPTIONS:
        assert all(flag in done.stdout for flag in option.flags), option.flags
        assert option.help in done.stdout


@pytest.mark.parametrize("option", runopts.taken_by(runopts.BUNDLE), ids=lambda o: o.long)
def test_mocker_bundle_takes_the_bundle_options(option):
    value = SAMPLE["number"] if option.number else SAMPLE["other"]
    for flag in option.bundle_flags():
        args = bundle_parser().parse_args([flag, *([value] if option.metavar else []), "busybox"])
        got = getattr(args, option.dest)
        want = True if not option.metavar else [value] if option.repeat else \
            int(value) if option.number else value
        assert got == want, flag


def test_the_engine_takes_the_engine_options():
    engine = runopts.taken_by(runopts.ENGINE)
    argv = ["run", "--image", "busybox"]
    for option in engine:
        argv += [option.long, "x"] if option.metavar else [option.long]
    args = engine_cli.quick_run_args([*argv, "BUNDLE"])
    assert args is not None
    assert all(getattr(args, o.dest) == ("x" if o.metavar else True) for o in engine)
    slow = engine_cli.build_parser().parse_args([*argv, "BUNDLE"])   # argparse agrees
    assert all(getattr(slow, o.dest) == getattr(args, o.dest) for o in engine)


def test_every_option_has_one_taker_that_knows_it():
    for option in runopts.RUN_OPTIONS:
        assert option.takers and set(option.takers) <= {runopts.BUNDLE, runopts.ENGINE, runopts.WRAPPER}
    flags = [f for o in runopts.RUN_OPTIONS for f in o.accepted]
    assert len(flags) == len(set(flags)), "a flag named twice"


def complete(*words: str) -> list[str]:
    script = (f"source {ROOT / 'completions/mocker.bash'}; mocker() {{ :; }}; "
              f"COMP_WORDS=(mocker {' '.join(words)}); COMP_CWORD={len(words)}; _mocker; "
              'printf "%s\\n" "${COMPREPLY[@]}"')
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                          check=True).stdout.split()


def test_bash_completes_run_options_from_the_table():
    assert set(complete("run", "--p")) == {"--publish", "--pids-limit"}
    assert set(complete("run", "-")) >= {f for o in runopts.RUN_OPTIONS for f in o.flags}
    assert complete("run", "--network", "") == ["bridge", "none", "host"]
    assert complete("run", "--cpus", "") == []          # a value: nothing to offer
    assert complete("run", "--net") == ["--network"]     # docker's old alias: taken, not offered
