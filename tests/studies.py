"""The small study file of the tests that run studies: random intercepts and slopes."""

from string import Template

_SLOPES = Template("""
[study]
name = "$name"
seed = $seed
replicates = $replicates
methods = ["ML", "REML"]

[model]
formula = "y ~ 1 + time + (1 + time | subject)"

[layout]
kind = "longitudinal"
subjects = 8
times = [0, 1, 2, 3, 4]

[truth]
beta = { "(Intercept)" = 10.0, time = 1.0 }
sigma = 1.0
[truth.re.subject]
sd = { "(Intercept)" = 1.0, time = $slope_sd }
corr = { "(Intercept):time" = 0.3 }

[grid]
$grid

[execution]
chunk_size = $chunk_size
$execution
""")


def slopes_study(
    name: str = "tiny",
    seed: int = 7,
    replicates: int = 12,
    chunk_size: int = 5,
    slope_sd: float = 0.5,
    grid: str = '"layout.subjects" = [8, 12]',
    execution: str = "",
) -> str:
    """The text of a study of 8 or 12 subjects × 5 times (or the given grid)."""
    return _SLOPES.substitute(
        name=name,
        seed=seed,
        replicates=replicates,
        chunk_size=chunk_size,
        slope_sd=slope_sd,
        grid=grid,
        execution=execution,
    )
