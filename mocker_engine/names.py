"""Generated container names: adjective_noun, as docker makes them."""

import os

ADJECTIVES = """
    agile bold brave bright busy calm clever cool crisp curious daring eager
    fancy fast gentle happy hardy humble jolly keen kind lively lucky merry
    nimble noble patient plucky proud quick quiet rapid sharp shiny silent
    steady sunny swift tidy trusty vivid warm wise witty zealous
""".split()

# Tools and small things of a workshop, the theme of a toolchain.
NOUNS = """
    anvil awl bellows bolt brace caliper chisel clamp compass crank drill
    file forge gauge gimlet hammer hinge jig ladle lathe level mallet nail
    pliers plane pulley punch rasp rivet router sander saw scribe shears
    spanner spindle square tongs trowel vise wedge winch wrench
""".split()


def generate_name(taken: set[str]) -> str:
    """An adjective_noun name not in taken (a number is added if all are used)."""
    def pick(words):  # os.urandom, as secrets.choice; random would cost ~1 ms to import
        return words[int.from_bytes(os.urandom(4), "little") % len(words)]
    for _ in range(100):
        name = f"{pick(ADJECTIVES)}_{pick(NOUNS)}"
        if name not in taken:
            return name
    number = 2
    while f"{name}{number}" in taken:
        number += 1
    return f"{name}{number}"
