"""What makes a store trustworthy: the identity of a study's inputs and a digest of every unit.

The store records a digest of the study text and of every file the study reads (the CSV of a
``table`` layout), and refuses to be resumed by different inputs. Each unit's completion mark
holds a digest of the arrays the unit wrote; `damaged_units` reads them back and names every
unit whose data is missing or changed, so that it is computed again (bit for bit the same, by
the seed contract). The chunks themselves carry a CRC32C checksum (`CHUNK_CODECS`), so that a
flipped byte fails to decode rather than reading as a number.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from workbench.errors import StudyError

INPUTS_ATTR = "input_digests"


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def input_digests(study) -> dict[str, str]:
    """SHA-256 of the study text and of each file its layouts read, keyed by what they are."""
    digests = {"study": hashlib.sha256(study.text.encode()).hexdigest()}
    for point in study.points():
        layout = point.layout
        if layout.get("kind") == "table" and isinstance(layout.get("path"), str):
            path = Path(layout["path"])
            path = path if path.is_absolute() else Path(study.base_dir) / path
            key = f"layout.path {layout['path']}"
            if key not in digests:
                try:
                    digests[key] = _file_digest(path)
                except OSError as exc:
                    raise StudyError(f"layout.path: cannot read {path}: {exc.strerror or exc}") from None
    return digests


def check_inputs(stored: str | None, study, out: Path) -> None:
    """Refuse to resume a store whose recorded inputs differ from the study's (stores that recorded none pass)."""
    if not stored:
        return
    recorded = json.loads(stored)
    current = input_digests(study)
    changed = [key for key in sorted(set(recorded) | set(current)) if recorded.get(key) != current.get(key)]
    # the study text may differ only in study.replicates (an extended study): that is checked elsewhere
    changed = [key for key in changed if key != "study"]
    if changed:
        what = changed[0].replace("layout.path ", "the file ")
        raise StudyError(
            f"{out}: was computed from other inputs ({what} changed since); use --fresh or another --out"
        )


def unit_digest(results: dict[str, np.ndarray]) -> str:
    """SHA-256 of a unit's arrays, by name, as stored (the store's dtypes)."""
    digest = hashlib.sha256()
    for name in sorted(results):
        values = np.ascontiguousarray(results[name])
        digest.update(name.encode())
        digest.update(str(values.dtype).encode())
        digest.update(values.tobytes())
    return digest.hexdigest()


def damaged_units(store, units: set[tuple[int, int]]) -> set[tuple[int, int]]:
    """The units among `units` whose stored arrays no longer match the digest in their mark.

    A mark without a digest (written before marks carried one) is trusted.
    """
    damaged = set()
    for point, chunk in sorted(units):
        expected = store.mark_digest(point, chunk)
        if not expected:
            continue
        try:
            stored = store.read_unit(point, chunk)
        except Exception:  # a chunk that fails its checksum or cannot be decoded
            damaged.add((point, chunk))
            continue
        if unit_digest(stored) != expected:
            damaged.add((point, chunk))
    return damaged


def describe_inputs(study) -> str:
    """The digests as the store's attribute (JSON text)."""
    return json.dumps(input_digests(study), sort_keys=True)
