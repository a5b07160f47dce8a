"""docs/study-file.md cannot drift from the validator: its examples are valid, and it names every key the validator takes.

The keys are not listed here by hand: they come from the validator's own "unknown key
(expected one of: ...)" and "must be one of ..." messages, provoked table by table.
"""

import re
from pathlib import Path

import pytest

from workbench.errors import StudyError
from workbench.study.spec import parse_study

ROOT = Path(__file__).parent.parent
DOC = (ROOT / "docs" / "study-file.md").read_text(encoding="utf-8")
BASE_DIR = ROOT / "simulations"
BLOCKS = re.findall(r"```toml\n(.*?)```", DOC, flags=re.S)
BASE = BLOCKS[0]


def tables_of(text):
    """Split a TOML text into (top-level table name, block) at its table headers."""
    blocks, name, lines = [], None, []
    for line in text.splitlines(keepends=True):
        header = re.match(r"^\[\[?\s*([A-Za-z0-9_-]+)", line)
        if header and (name is None or header.group(1) != name or line.startswith("[[")):
            if lines:
                blocks.append((name, "".join(lines)))
            name, lines = header.group(1), []
        lines.append(line)
    if lines:
        blocks.append((name, "".join(lines)))
    return blocks


def completed(fragment):
    """A fragment with the tables of the first example that it does not replace.

    A fragment that replaces the layout or the truth drops the example's grid (whose paths
    point into them) unless it brings its own.
    """
    replaced = {name for name, _ in tables_of(fragment)}
    if replaced & {"layout", "truth"}:
        replaced.add("grid")
    kept = [block for name, block in tables_of(BASE) if name not in replaced]
    return "".join(kept) + "\n" + fragment


@pytest.mark.parametrize("block", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_every_example_is_a_valid_study(block):
    study = parse_study(completed(block), BASE_DIR)
    assert study.points()


def section(heading):
    """The text of the document from `heading` to the next heading of the same or a higher level."""
    level = len(heading) - len(heading.lstrip("#"))
    start = DOC.index(heading + "\n")
    rest = DOC[start + len(heading) :]
    end = re.search(rf"^#{{1,{level}}} ", rest, flags=re.M)
    return rest[: end.start()] if end else rest


def documented(text):
    """The keys in the first column of the key tables of a section."""
    return set(re.findall(r"^\| `([^`]+)` \|", text, flags=re.M))


def allowed(text):
    """The keys the validator lists when it meets an unknown one in `text` (a study with a key `unknown_key`)."""
    with pytest.raises(StudyError) as error:
        parse_study(completed(text), BASE_DIR)
    message = str(error.value)
    found = re.search(r"unknown (?:key|table) \(expected one of: ([^)]*)\)", message)
    assert found, message
    return set(found.group(1).split(", "))


LAYOUTS = {
    "longitudinal": '[layout]\nkind = "longitudinal"\nsubjects = 5\ntimes = [0, 1]\n',
    "nested": '[layout]\nkind = "nested"\nlevels = { a = 3 }\n',
    "crossed": '[layout]\nkind = "crossed"\nfactors = { a = 3, b = 3 }\n',
    "table": '[layout]\nkind = "table"\npath = "data/sleepstudy.csv"\n',
}

# (the section that must document the keys, a study fragment with an unknown key in that table)
PROBES = [
    ("## `[study]`", '[study]\nname = "x"\nseed = 1\nreplicates = 1\nunknown_key = 1\n'),
    ("## `[model]`", '[model]\nformula = "y ~ 1 + (1 | subject)"\nunknown_key = 1\n'),
    *((f'### `kind = "{kind}"`', text + "unknown_key = 1\n") for kind, text in LAYOUTS.items()),
    ('### `kind = "longitudinal"`', LAYOUTS["longitudinal"] + "visits = { min = 1, unknown_key = 1 }\n"),
    ('### `kind = "nested"`', LAYOUTS["nested"] + "size = { min = 1, max = 2, unknown_key = 1 }\n"),
    ("## `[truth]`: the true parameters, on the data scale", "[truth]\nbeta = {}\nsigma = 1.0\nunknown_key = 1\n"),
    ("## `[truth]`: the true parameters, on the data scale",
     "[truth]\nbeta = {}\nsigma = 1.0\n[truth.re.g]\nsd = { a = 1.0 }\nunknown_key = 1\n"),
    ("## `[[analysis]]`: the fitted models", '[[analysis]]\nname = "a"\nunknown_key = 1\n'),
    ("## `[execution]`", "[execution]\nunknown_key = 1\n"),
    ("## `[summary]`", "[summary]\nunknown_key = 1\n"),
    ("## Tests and intervals", "[tests]\nddf = []\nunknown_key = 1\n"),
    ("## Tests and intervals", "[intervals]\nmethods = []\nunknown_key = 1\n"),
    ("## Tests and intervals", '[[analysis]]\nname = "a"\n[[analysis]]\nname = "b"\n[[lrt]]\nsmaller = "a"\nlarger = "b"\nunknown_key = 1\n'),
]


@pytest.mark.parametrize(("heading", "text"), PROBES)
def test_every_key_the_validator_takes_is_documented_in_its_section(heading, text):
    keys = allowed(text)
    assert keys and keys <= documented(section(heading)) | {"kind", "covariates"}, keys - documented(section(heading))


def test_every_covariate_parameter_is_documented():
    keys = set()
    for dist in choices(LAYOUTS["nested"] + '[layout.covariates.x]\ndist = "unknown"\n'):
        keys |= allowed(LAYOUTS["nested"] + f'[layout.covariates.x]\ndist = "{dist}"\nunknown_key = 1\n'
                        + ("levels = [1]\n" if dist == "categorical" else "values = [1]\n" if dist == "grid" else ""))
    assert keys <= documented(section("### `[layout.covariates.<name>]`")), keys


def choices(text):
    """The values the validator lists when it meets an unknown one ("must be one of a | b | c")."""
    with pytest.raises(StudyError) as error:
        parse_study(completed(text), BASE_DIR)
    found = re.search(r"must be one of ([^,]*), got", str(error.value))
    assert found, str(error.value)
    return found.group(1).split(" | ")


def test_every_table_layout_kind_and_distribution_is_documented():
    tables = allowed("[unknown_key]\nx = 1\n")
    assert tables == {"study", "model", "layout", "truth", "analysis", "grid", "execution", "summary", "tests", "intervals", "lrt"}
    for table in tables:
        assert f"`{table}`" in DOC.split("## `[study]`")[0], table
    for kind in choices('[layout]\nkind = "unknown"\n'):
        assert f'### `kind = "{kind}"`' in DOC, kind
    dists = choices(LAYOUTS["nested"] + '[layout.covariates.x]\ndist = "unknown"\n')
    documented_dists = re.search(r"\| `dist` \| one of ([^|]*)\|", DOC).group(1)
    assert set(re.findall(r"`([a-z]+)`", documented_dists)) == set(dists)
