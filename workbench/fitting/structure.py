"""The symbolic structure of the blocked Cholesky factor of Ω(θ), and the cross-product blocks.

Rows of Ω are numbered globally: the random effects term by term (level-major, effect-minor),
then the fixed effects, then the response. A leading run of terms whose grouping factors nest
(each in the next; a factor nests in itself) is eliminated level by level as small dense
*fronts* — one per level, holding that level's rows, its ancestors' rows and the trailing rows
it touches — so that nested and single-factor models never fill in. The remaining rows (crossed
factors, X and y) form one dense trailing block T of size D.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from workbench.model.design import Design, term_arrays
from workbench.kernels.products import CrossProducts, fill_products


class Structure(NamedTuple):
    """Integer arrays describing the factor, passed as one argument to the kernels."""

    n: int
    p: int
    term_q: np.ndarray  # (K,)
    term_row0: np.ndarray  # (K,) global row of each term's first row
    theta_term: np.ndarray  # (ntheta,)
    theta_row: np.ndarray
    theta_col: np.ndarray
    front_term: np.ndarray  # (F,)
    front_ptr: np.ndarray  # (F+1,) into front_rows / front_relpos
    front_rows: np.ndarray  # global rows of each front, sorted; the front's own q rows first
    front_relpos: np.ndarray  # position of each non-own row in the parent front, or in T
    front_parent: np.ndarray  # (F,) parent front, -1 when the update goes to T
    front_mat_ptr: np.ndarray  # (F+1,) offsets of the s×s matrices of fronts with children (0 for leaves)
    front_acol_ptr: np.ndarray  # (F+1,) offsets of every front's s×q column blocks (A, L and S)
    row_term: np.ndarray  # (N,) term of each global row, -1 for X and y
    row_comp: np.ndarray  # (N,) effect index within its level
    t0: int  # first global row of T
    nprefix: int  # number of terms eliminated as fronts


def _nests(child: np.ndarray, parent: np.ndarray, nchild: int) -> np.ndarray | None:
    """The parent level of each child level when `child` nests in `parent`, else None."""
    first = np.full(nchild, -1, np.int64)
    first[child[::-1]] = parent[::-1]
    return first if np.array_equal(first[child], parent) else None


def build_structure(design: Design) -> Structure:
    """Choose the fronts and the trailing block, and record their row patterns."""
    terms = design.terms
    term_q = np.array([t.q for t in terms], np.int64)
    sizes = np.array([t.q * t.nlevels for t in terms], np.int64)
    term_row0 = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    nrandom = int(sizes.sum())
    total = nrandom + design.p + 1

    parents = []
    nprefix = 1
    while nprefix < len(terms):
        parent = _nests(terms[nprefix - 1].codes, terms[nprefix].codes, terms[nprefix - 1].nlevels)
        if parent is None:
            break
        parents.append(parent)
        nprefix += 1
    t0 = int(term_row0[nprefix]) if nprefix < len(terms) else nrandom

    row_term = np.full(total, -1, np.int64)
    row_comp = np.zeros(total, np.int64)
    for k, t in enumerate(terms):
        rows = slice(term_row0[k], term_row0[k] + sizes[k])
        row_term[rows] = k
        row_comp[rows] = np.tile(np.arange(t.q), t.nlevels)

    fixed_rows = np.arange(nrandom, total)
    patterns = _trailing_patterns(design, nprefix, term_row0, t0)
    front_term, front_level = [], []
    front0 = []
    for k in range(nprefix):
        front0.append(len(front_term))
        front_term.extend([k] * terms[k].nlevels)
        front_level.extend(range(terms[k].nlevels))
    front_parent = np.full(len(front_term), -1, np.int64)
    for k in range(nprefix - 1):
        front_parent[front0[k] : front0[k] + terms[k].nlevels] = front0[k + 1] + parents[k]

    front_rows_list = []
    for f, (k, j) in enumerate(zip(front_term, front_level)):
        own = term_row0[k] + j * terms[k].q + np.arange(terms[k].q)
        ancestors = []
        g, kk = front_parent[f], k
        while g >= 0:
            kk += 1
            level = front_level[g]
            ancestors.append(term_row0[kk] + level * terms[kk].q + np.arange(terms[kk].q))
            g = front_parent[g]
        trailing = np.concatenate([patterns[f], fixed_rows])
        front_rows_list.append(np.concatenate([own, *ancestors, trailing]).astype(np.int64))

    front_ptr = np.concatenate([[0], np.cumsum([len(r) for r in front_rows_list])]).astype(np.int64)
    front_rows = np.concatenate(front_rows_list) if front_rows_list else np.zeros(0, np.int64)
    front_relpos = np.full(len(front_rows), -1, np.int64)
    for f, rows in enumerate(front_rows_list):
        q = terms[front_term[f]].q
        rest = rows[q:]
        g = front_parent[f]
        if g >= 0:
            pos = np.searchsorted(front_rows_list[g], rest)
            assert np.array_equal(front_rows_list[g][pos], rest)
        else:
            pos = rest - t0
        front_relpos[front_ptr[f] + q : front_ptr[f + 1]] = pos
    front_q = term_q[np.array(front_term, np.int64)] if front_term else np.zeros(0, np.int64)
    front_size = np.diff(front_ptr)
    has_children = np.zeros(len(front_size), bool)
    has_children[front_parent[front_parent >= 0]] = True
    front_mat_ptr = np.concatenate([[0], np.cumsum(np.where(has_children, front_size**2, 0))]).astype(np.int64)
    front_acol_ptr = np.concatenate([[0], np.cumsum(front_size * front_q)]).astype(np.int64)

    theta_term, theta_row, theta_col = design.theta_map()
    return Structure(
        n=design.n,
        p=design.p,
        term_q=term_q,
        term_row0=term_row0,
        theta_term=theta_term,
        theta_row=theta_row,
        theta_col=theta_col,
        front_term=np.array(front_term, np.int64),
        front_ptr=front_ptr,
        front_rows=front_rows,
        front_relpos=front_relpos,
        front_parent=front_parent,
        front_mat_ptr=front_mat_ptr,
        front_acol_ptr=front_acol_ptr,
        row_term=row_term,
        row_comp=row_comp,
        t0=t0,
        nprefix=nprefix,
    )


def _trailing_patterns(design: Design, nprefix: int, term_row0: np.ndarray, t0: int) -> list[np.ndarray]:
    """The trailing random rows that share an observation with each front's level (sorted).

    By nesting, a parent level's observations are its children's, so this already holds the
    union of its children's patterns.
    """
    terms = design.terms
    nfront = sum(t.nlevels for t in terms[:nprefix])
    if nprefix == len(terms):
        return [np.zeros(0, np.int64)] * nfront
    keys = []
    span = int(term_row0[-1] + terms[-1].q * terms[-1].nlevels) - t0
    offset = 0
    for k in range(nprefix):
        front = offset + terms[k].codes
        for l in range(nprefix, len(terms)):
            for a in range(terms[l].q):
                row = term_row0[l] + terms[l].codes * terms[l].q + a - t0
                keys.append(front * span + row)
        offset += terms[k].nlevels
    keys = np.unique(np.concatenate(keys))
    fronts, rows = np.divmod(keys, span)
    bounds = np.searchsorted(fronts, np.arange(nfront + 1))
    return [rows[bounds[f] : bounds[f + 1]] + t0 for f in range(nfront)]


def front_starts(structure: Structure) -> np.ndarray:
    """The first front of each prefix term."""
    return np.searchsorted(structure.front_term, np.arange(structure.nprefix)).astype(np.int64)


def cross_products(design: Design, structure: Structure) -> CrossProducts:
    """The numeric A blocks for the kernels, in the layout `structure` describes."""
    codes, z = term_arrays(design)
    d = len(structure.row_term) - structure.t0
    products = CrossProducts(np.zeros(structure.front_acol_ptr[-1]), np.zeros((d, d)))
    fill_products(codes, z, design.x, design.y, structure, front_starts(structure), *products)
    return products
