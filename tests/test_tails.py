"""The tail probabilities of workbench.fitting.tails are scipy.stats's, bit for bit."""

import numpy as np
from hypothesis import given, strategies as st
from scipy import stats

from workbench.fitting.tails import chi2_sf, normal_sf, t_sf

EDGES = np.array([-np.inf, -3.0, -1e-300, 0.0, 1e-300, 0.5, 1.0, 3.0, 40.0, 1e10, np.inf, np.nan])
DFS = [-1.0, 0.0, 1e-3, 0.5, 1.0, 2.0, 2.5, 7.0, 1e6, np.inf, np.nan]

values = st.floats(allow_nan=True, allow_infinity=True, width=64)
dfs = st.one_of(st.sampled_from(DFS), st.floats(min_value=-1.0, max_value=1e7, allow_nan=False))


def same(a, b) -> bool:
    return np.array_equal(np.asarray(a, float), np.asarray(b, float), equal_nan=True)


def test_edges_match_scipy_stats():
    assert same(normal_sf(EDGES), stats.norm.sf(EDGES))
    for df in DFS:
        assert same(t_sf(EDGES, df), stats.t.sf(EDGES, df)), df
        if np.isfinite(df):  # χ² with infinitely many degrees of freedom never arises
            assert same(chi2_sf(EDGES, df), stats.chi2.sf(EDGES, df)), df


@given(values, dfs)
def test_tails_match_scipy_stats(x, df):
    assert same(normal_sf(x), stats.norm.sf(x))
    assert same(t_sf(x, df), stats.t.sf(x, df))
    if np.isfinite(df):
        assert same(chi2_sf(x, df), stats.chi2.sf(x, df))


def test_broadcasting_as_scipy():
    x = np.linspace(0.0, 5.0, 6)
    df = np.array([[1.0], [4.0]])
    assert t_sf(x, df).shape == stats.t.sf(x, df).shape == (2, 6)
    assert same(chi2_sf(x, df), stats.chi2.sf(x, df))
