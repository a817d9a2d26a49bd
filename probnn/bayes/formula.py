"""The formula form of `probnn.bayes.glm`: `"y ~ x1 + x2 + (1 + x1 | g)"` parsed by `formulae`.

`formulae` (the parser bambi uses) is an optional dependency: `pip install
"probnn[formula]"`. The common terms become `x` (numeric columns, dummy-coded
categoricals, interactions and transformations as `formulae` builds them; the
intercept is always in the model), each `(1 | g)` a grouping column `g` with a
varying intercept, and each `(1 + x1 | g)` adds a varying slope of `x1`.
"""

import numpy as np


def _formulae(owner):
    try:
        import formulae
    except ImportError:
        raise ImportError(
            f"{owner}: the formula form needs the optional package 'formulae'; "
            f'install it with pip install "probnn[formula]" (or pip install '
            f"formulae), or pass x and y as arrays"
        ) from None
    return formulae


def _column(owner, name, value, data):
    """A per-row argument given as a column name of `data` (or as values)."""
    if isinstance(value, str):
        if value not in data.columns:
            raise ValueError(f"{owner}: {name}={value!r} is not a column of data")
        return data[value].to_numpy()
    return value


def _group_terms(owner, group, features):
    """`{grouping column: [features whose slopes vary]}` from the formula's group terms."""
    slopes, intercepts = {}, set()
    for term in [] if group is None else group.terms.values():
        factor = term.factor.name
        if ":" in factor:
            raise ValueError(
                f"{owner}: grouping by an interaction ({factor}) is not supported; make it one column of data"
            )
        if type(term.expr).__name__ == "Intercept":
            intercepts.add(factor)
            slopes.setdefault(factor, [])
        elif term.expr.name in features:
            slopes.setdefault(factor, []).append(term.expr.name)
        else:
            raise ValueError(
                f"{owner}: the varying slope {term.name!r} must be a numeric common term of the formula"
            )
    missing = sorted(set(slopes) - intercepts)
    if missing:
        raise ValueError(
            f"{owner}: group terms without an intercept ({missing}); glm always "
            f"has a varying intercept: write (1 + x | g)"
        )
    return slopes


def design_from_formula(owner, formula, data, trials, offset, groups, feature_names):
    """`(x, y, trials, offset, groups, group_effects, feature_names)` for `glm` from a formula."""
    formulae = _formulae(owner)
    if data is None or not hasattr(data, "columns"):
        raise ValueError(f"{owner}: a formula needs data=, a pandas DataFrame")
    if groups is not None or feature_names is not None:
        raise ValueError(
            f"{owner}: with a formula, write the groups in it ((1 | g)) and let it "
            f"name the features; groups= and feature_names= are for arrays"
        )
    try:
        design = formulae.design_matrices(formula, data, na_action="error")
    except Exception as err:  # formulae raises many types (parse errors, KeyError, ...)
        raise ValueError(f"{owner}: cannot use formula {formula!r}: {type(err).__name__}: {err}") from None
    common = design.common.as_dataframe() if design.common is not None else None
    if common is None or "Intercept" not in common.columns:
        raise ValueError(f"{owner}: the formula must keep the intercept (no '0 +' or '- 1')")
    x = common.drop(columns="Intercept")
    if x.shape[1] == 0:
        raise ValueError(f"{owner}: the formula has no predictors besides the intercept")
    y = np.asarray(design.response.design_matrix)
    if y.ndim == 2 and y.shape[1] != 1:
        raise ValueError(
            f"{owner}: the formula's outcome must be one numeric column, got "
            f"{y.shape[1]} columns (a categorical outcome?)"
        )
    slopes = _group_terms(owner, design.group, list(x.columns))
    groups = {g: data[g].to_numpy() for g in slopes} or None
    return (
        x,
        y.reshape(-1),
        _column(owner, "trials", trials, data),
        _column(owner, "offset", offset, data),
        groups,
        slopes or "intercept",
        None,
    )
