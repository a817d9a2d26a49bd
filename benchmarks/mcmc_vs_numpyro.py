"""Bayesian linear regression by NUTS: probnn.bayes vs NumPyro vs plain TFP, in ESS per second.

Workload: 1,000 rows x 10 features, Normal likelihood, the same weakly informative priors in
every arm (rstanarm's: intercept of the centred predictors ~ Normal(mean y, 2.5 sd y), coef_j ~
Normal(0, 2.5 sd y / sd x_j), sigma ~ Exponential(1 / sd y)); 4 chains, 1,000 warm-up steps and
1,000 draws each.

Arms (each in its own fresh Python process, interleaved over `--rounds`):

- probnn: `probnn.bayes.linear_regression` (vectorised chains, windowed diagonal-metric warm-up,
  XLA; float64). Its wall time includes the pointwise log likelihood and the InferenceData.
- numpyro: `numpyro.infer.NUTS` with `chain_method="vectorized"`, `jit_model_args=True`
  (float32, JAX's default).
- tfp: `tfp.mcmc.NoUTurnSampler` + `DualAveragingStepSizeAdaptation` (no mass matrix),
  `sample_chain` in one `tf.function(jit_compile=True)` (float32).

"cold" is the first run in the process (compilation included), "warm" a second run on the same
data (compiled program reused). Reported: the minimum bulk ESS over (intercept, coef, sigma) from
arviz, divided by the wall time. Needs the `bench` extra: `pip install ".[bench]"`.

`--workload glm` runs the GLM workloads of issue 22 instead (results in mcmc_vs_numpyro_glm.md):

- logistic regression, 5,000 rows x 20 features, `probnn.bayes.glm(family="bernoulli")` against
  the same model in NumPyro (rstanarm's priors: intercept of the centred predictors ~ Normal(0,
  2.5), coef_j ~ Normal(0, 2.5 / sd x_j));
- varying-intercept Poisson regression, 2,000 rows, 50 groups, 2 features, non-centred in both
  (group_sd ~ Exponential(1), z ~ Normal(0, 1)); min bulk ESS over intercept, coef, group_sd and
  every group intercept;
- variational inference on the logistic regression: probnn's `method="advi"` / `"fullrank"`
  against NumPyro's SVI with `AutoNormal` / `AutoMultivariateNormal`, the same number of steps
  (2,000), the same ELBO estimator (16 reparameterised draws per step, vectorised) and Adam at
  the same learning rate schedule (constant 0.05 for 80 %, then a cosine to 1 %); wall time cold
  and warm, and how far the two fits' posterior means are apart (in posterior sds).

    python benchmarks/mcmc_vs_numpyro.py            # 3 interleaved rounds, writes the results file
    python benchmarks/mcmc_vs_numpyro.py --arm numpyro   # one arm in this process (JSON line)
    python benchmarks/mcmc_vs_numpyro.py --workload glm --rounds 1
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

ROWS, FEATURES, CHAINS, WARMUP, DRAWS = 1000, 10, 4, 1000, 1000


def make_data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(ROWS, FEATURES))
    coef = rng.normal(size=FEATURES)
    y = 1.5 + x @ coef + 0.8 * rng.normal(size=ROWS)
    return x, y


def min_bulk_ess(posterior):
    """Minimum bulk ESS over the variables of a dict of (chain, draw, ...) arrays."""
    import arviz as az

    ess = az.ess(az.from_dict(posterior=posterior), method="bulk")
    return float(min(float(ess[v].min()) for v in ess.data_vars))


def arm_probnn(x, y):
    import probnn

    def run(seed):
        t = time.perf_counter()
        nuts = probnn.bayes.NUTS(
            num_chains=CHAINS, num_samples=DRAWS, num_warmup=WARMUP, seed=seed, verbose=0
        )
        idata = probnn.bayes.linear_regression(x, y, sampler=nuts)
        wall = time.perf_counter() - t
        post = {k: idata.posterior[k].values for k in ("intercept", "coef", "sigma")}
        return wall, post, int(idata.sample_stats["diverging"].sum())

    return run


def arm_numpyro(x, y):
    import jax
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist
    from numpyro.infer import MCMC, NUTS

    xm, sx, ym, sy = x.mean(0), x.std(0, ddof=1), y.mean(), y.std(ddof=1)
    xc = jnp.asarray(x - xm, jnp.float32)
    yj = jnp.asarray(y, jnp.float32)

    def model(xc, y=None):
        intercept_c = numpyro.sample("intercept_c", dist.Normal(ym, 2.5 * sy))
        coef = numpyro.sample("coef", dist.Normal(0.0, 2.5 * sy / sx).to_event(1))
        sigma = numpyro.sample("sigma", dist.Exponential(1.0 / sy))
        numpyro.sample("y", dist.Normal(intercept_c + xc @ coef, sigma), obs=y)

    # jit_model_args: the data are arguments of the compiled program, so the warm run reuses it.
    mcmc = MCMC(
        NUTS(model),
        num_warmup=WARMUP,
        num_samples=DRAWS,
        num_chains=CHAINS,
        chain_method="vectorized",
        progress_bar=False,
        jit_model_args=True,
    )

    def run(seed):
        t = time.perf_counter()
        mcmc.run(jax.random.PRNGKey(seed), xc, y=yj, extra_fields=("diverging",))
        samples = mcmc.get_samples(group_by_chain=True)
        jax.block_until_ready(samples)
        wall = time.perf_counter() - t
        coef = np.asarray(samples["coef"])
        post = {
            "intercept": np.asarray(samples["intercept_c"]) - coef @ xm,
            "coef": coef,
            "sigma": np.asarray(samples["sigma"]),
        }
        return wall, post, int(np.asarray(mcmc.get_extra_fields()["diverging"]).sum())

    return run


def arm_tfp(x, y):
    import tensorflow as tf
    import tensorflow_probability as tfp

    tfd = tfp.distributions
    xm, sx, ym, sy = x.mean(0), x.std(0, ddof=1), y.mean(), y.std(ddof=1)
    xs = tf.constant((x - xm) / sx, tf.float32)
    yt = tf.constant(y, tf.float32)
    f32 = np.float32

    def log_prob(u):  # standardised coordinates, as probnn uses: (alpha_s, beta_s, log sigma_s)
        intercept_c = f32(ym) + f32(sy) * u[:, 0]
        beta_s, sigma = u[:, 1:-1], f32(sy) * tf.exp(u[:, -1])
        loc = intercept_c[:, None] + f32(sy) * tf.matmul(beta_s, xs, transpose_b=True)
        lp = tf.reduce_sum(tfd.Normal(loc, sigma[:, None]).log_prob(yt), -1)
        lp += tfd.Normal(f32(ym), f32(2.5 * sy)).log_prob(intercept_c)
        lp += tf.reduce_sum(tfd.Normal(f32(0), f32(2.5)).log_prob(beta_s), -1)
        return lp + tfd.Exponential(f32(1 / sy)).log_prob(sigma) + tf.math.log(sigma)

    kernel = tfp.mcmc.DualAveragingStepSizeAdaptation(
        tfp.mcmc.NoUTurnSampler(log_prob, step_size=0.1),
        num_adaptation_steps=int(0.8 * WARMUP),
        target_accept_prob=0.8,
    )

    @tf.function(jit_compile=True)
    def chain(init, seed):
        return tfp.mcmc.sample_chain(
            DRAWS,
            init,
            kernel=kernel,
            num_burnin_steps=WARMUP,
            trace_fn=lambda _, r: r.inner_results.has_divergence,
            seed=seed,
        )

    def run(seed):
        init = tf.constant(np.random.default_rng(seed).uniform(-2, 2, (CHAINS, FEATURES + 2)), tf.float32)
        t = time.perf_counter()
        states, divergent = chain(init, tf.constant([seed, 1]))
        states = states.numpy()
        wall = time.perf_counter() - t
        u = np.moveaxis(states, 0, 1)  # (chain, draw, dim)
        coef = u[..., 1:-1] * sy / sx
        post = {"intercept": ym + sy * u[..., 0] - coef @ xm, "coef": coef, "sigma": sy * np.exp(u[..., -1])}
        return wall, post, int(divergent.numpy().sum())

    return run


# ------------------------------------------------------------------------------ GLM workloads

LOGIT_ROWS, LOGIT_FEATURES, POIS_ROWS, POIS_GROUPS, VI_STEPS = 5000, 20, 2000, 50, 2000


def make_logistic(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(LOGIT_ROWS, LOGIT_FEATURES))
    coef = rng.normal(0, 0.3, LOGIT_FEATURES)
    y = rng.binomial(1, 1 / (1 + np.exp(-(-0.5 + x @ coef))))
    return x, y


def make_poisson(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(POIS_ROWS, 2))
    g = rng.integers(0, POIS_GROUPS, POIS_ROWS)
    effect = rng.normal(0, 0.5, POIS_GROUPS)
    y = rng.poisson(np.exp(0.5 + x @ np.array([0.3, -0.2]) + effect[g]))
    return x, y, g


def _probnn_glm(x, y, family, groups=None, method="nuts"):
    import probnn

    def run(seed):
        t = time.perf_counter()
        sampler = (
            probnn.bayes.NUTS(num_chains=CHAINS, num_samples=DRAWS, num_warmup=WARMUP, seed=seed, verbose=0)
            if method == "nuts"
            else probnn.bayes.VI(method, num_steps=VI_STEPS, num_chains=CHAINS, num_samples=DRAWS, seed=seed)
        )
        idata = probnn.bayes.glm(x, y, family=family, groups=groups, sampler=sampler)
        wall = time.perf_counter() - t
        names = ["intercept", "coef"] + (["group_sd", "group_intercept"] if groups is not None else [])
        post = {k: idata.posterior[k].values for k in names}
        divergent = int(idata.sample_stats["diverging"].sum()) if method == "nuts" else 0
        return wall, post, divergent

    return run


def _numpyro_model(x, groups):
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    xm, sx = x.mean(0), x.std(0, ddof=1)
    xc = jnp.asarray(x - xm, jnp.float32)

    def model(xc, y=None):
        intercept_c = numpyro.sample("intercept_c", dist.Normal(0.0, 2.5))
        coef = numpyro.sample("coef", dist.Normal(0.0, 2.5 / sx).to_event(1))
        eta = intercept_c + xc @ coef
        if groups is None:
            numpyro.sample("y", dist.Bernoulli(logits=eta), obs=y)
            return
        tau = numpyro.sample("group_sd", dist.Exponential(1.0))
        z = numpyro.sample("z", dist.Normal(0.0, 1.0).expand([POIS_GROUPS]).to_event(1))
        numpyro.deterministic("group_intercept", tau * z)
        numpyro.sample("y", dist.Poisson(jnp.exp(eta + tau * z[groups])), obs=y)

    def original(samples):
        coef = np.asarray(samples["coef"])
        post = {"intercept": np.asarray(samples["intercept_c"]) - coef @ xm, "coef": coef}
        if groups is not None:
            post["group_sd"] = np.asarray(samples["group_sd"])
            post["group_intercept"] = np.asarray(samples["group_intercept"])
        return post

    return model, xc, original


def _numpyro_glm(x, y, groups=None):
    import jax
    import jax.numpy as jnp
    from numpyro.infer import MCMC, NUTS

    model, xc, original = _numpyro_model(x, None if groups is None else jnp.asarray(groups))
    yj = jnp.asarray(y, jnp.float32)
    mcmc = MCMC(
        NUTS(model),
        num_warmup=WARMUP,
        num_samples=DRAWS,
        num_chains=CHAINS,
        chain_method="vectorized",
        progress_bar=False,
        jit_model_args=True,
    )

    def run(seed):
        t = time.perf_counter()
        mcmc.run(jax.random.PRNGKey(seed), xc, y=yj, extra_fields=("diverging",))
        samples = mcmc.get_samples(group_by_chain=True)
        jax.block_until_ready(samples)
        wall = time.perf_counter() - t
        return wall, original(samples), int(np.asarray(mcmc.get_extra_fields()["diverging"]).sum())

    return run


def _numpyro_svi(x, y, guide_name):
    import jax
    import jax.numpy as jnp
    from numpyro.infer import SVI, Trace_ELBO, autoguide
    from numpyro.optim import Adam

    model, xc, original = _numpyro_model(x, None)
    yj = jnp.asarray(y, jnp.float32)
    guide = getattr(autoguide, guide_name)(model)
    constant = 0.8 * VI_STEPS

    def schedule(i):  # probnn's: constant 0.05 for 80 % of the steps, then a cosine to 1 %
        tail = jnp.maximum(i + 1 - constant, 0.0) / (VI_STEPS - constant)
        return 0.05 * (0.01 + 0.99 * 0.5 * (1.0 + jnp.cos(jnp.pi * tail)))

    svi = SVI(model, guide, Adam(schedule), Trace_ELBO(num_particles=16, vectorize_particles=True))

    def run(seed):
        t = time.perf_counter()
        result = svi.run(jax.random.PRNGKey(seed), VI_STEPS, xc, y=yj, progress_bar=False)
        draws = guide.sample_posterior(
            jax.random.PRNGKey(seed + 1), result.params, sample_shape=(CHAINS, DRAWS)
        )
        jax.block_until_ready(draws)
        return time.perf_counter() - t, original(draws), 0

    return run


GLM_ARMS = {
    "probnn_logistic": lambda: _probnn_glm(*make_logistic(), "bernoulli"),
    "numpyro_logistic": lambda: _numpyro_glm(*make_logistic()),
    "probnn_poisson": lambda: _probnn_glm(*make_poisson()[:2], "poisson", make_poisson()[2]),
    "numpyro_poisson": lambda: _numpyro_glm(*make_poisson()),
    "probnn_advi": lambda: _probnn_glm(*make_logistic(), "bernoulli", method="advi"),
    "numpyro_autonormal": lambda: _numpyro_svi(*make_logistic(), "AutoNormal"),
    "probnn_fullrank": lambda: _probnn_glm(*make_logistic(), "bernoulli", method="fullrank"),
    "numpyro_automvn": lambda: _numpyro_svi(*make_logistic(), "AutoMultivariateNormal"),
}
GLM_PAIRS = [
    ("logistic regression 5,000 x 20, NUTS", "probnn_logistic", "numpyro_logistic"),
    ("varying-intercept Poisson, 2,000 rows, 50 groups, NUTS", "probnn_poisson", "numpyro_poisson"),
    ("logistic regression, mean-field VI (ADVI / AutoNormal)", "probnn_advi", "numpyro_autonormal"),
    (
        "logistic regression, full-rank VI (fullrank / AutoMultivariateNormal)",
        "probnn_fullrank",
        "numpyro_automvn",
    ),
]


ARMS = {"probnn": arm_probnn, "numpyro": arm_numpyro, "tfp": arm_tfp}
LABELS = {
    "probnn": "probnn.bayes.linear_regression",
    "numpyro": "NumPyro NUTS (chain_method='vectorized')",
    "tfp": "tfp.mcmc.NoUTurnSampler + dual averaging (XLA)",
}


def one_arm(name):
    run = GLM_ARMS[name]() if name in GLM_ARMS else ARMS[name](*make_data())
    out = {"arm": name}
    for label, seed in (("cold", 1), ("warm", 2)):
        wall, post, divergent = run(seed)
        ess = min_bulk_ess(post)
        out[label] = {
            "seconds": wall,
            "min_ess": ess,
            "ess_per_s": ess / wall,
            "divergent": divergent,
            "mean": {k: np.asarray(v).mean((0, 1)).tolist() for k, v in post.items()},
            "sd": {k: np.asarray(v).std((0, 1)).tolist() for k, v in post.items()},
        }
    print(json.dumps(out))


def run_arm_process(name):
    """Run one arm in a fresh Python process; its JSON result with the load average at the start."""
    env = dict(
        os.environ,
        TF_CPP_MIN_LOG_LEVEL="3",
        PYTHONPATH=os.pathsep.join(
            [os.path.dirname(os.path.dirname(os.path.abspath(__file__))), os.environ.get("PYTHONPATH", "")]
        ),
    )
    load = os.getloadavg()[0]
    proc = subprocess.run([sys.executable, __file__, "--arm", name], env=env, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"arm {name} failed:\n{proc.stderr[-3000:]}")
    res = json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1])
    res["load"] = load
    return res


def _mean_gap(a, b):
    """Largest |mean_a - mean_b| over all parameters, in posterior sds of a."""
    return max(
        float(np.max(np.abs(np.subtract(a["mean"][k], b["mean"][k])) / np.asarray(a["sd"][k])))
        for k in a["mean"]
    )


def _glm_rows(results):
    med = statistics.median
    rows = []
    for label, ours, theirs in GLM_PAIRS:
        p, n = results[ours], results[theirs]
        nuts = "NUTS" in label
        key = "ess_per_s" if nuts else "seconds"
        ratio = {
            ph: med((a[ph][key] / b[ph][key]) if nuts else (b[ph][key] / a[ph][key]) for a, b in zip(p, n))
            for ph in ("cold", "warm")
        }
        rows.append(
            [
                label,
                *(
                    f"{med(r[ph][key] for r in runs):,.{0 if nuts else 2}f}"
                    for ph in ("cold", "warm")
                    for runs in (p, n)
                ),
                f"{ratio['cold']:.2f}x",
                f"{ratio['warm']:.2f}x",
                f"{med(r['warm']['min_ess'] for r in p):,.0f} / {med(r['warm']['min_ess'] for r in n):,.0f}",
                f"{sum(r[ph]['divergent'] for r in p + n for ph in ('cold', 'warm'))}",
                f"{med(_mean_gap(a['warm'], b['warm']) for a, b in zip(p, n)):.3f}",
            ]
        )
    return rows


def glm_main(args):
    """The GLM workloads: each arm in a fresh process, interleaved over rounds."""
    from _common import machine_description, markdown_table, write_result

    results = {name: [] for name in GLM_ARMS}
    for r in range(args.rounds):
        for name in GLM_ARMS:
            res = run_arm_process(name)
            results[name].append(res)
            print(
                f"round {r + 1} {name}: load {res['load']:.1f}, cold {res['cold']['seconds']:.1f} s "
                f"(min ESS {res['cold']['min_ess']:.0f}), warm {res['warm']['seconds']:.1f} s "
                f"(min ESS {res['warm']['min_ess']:.0f})",
                flush=True,
            )
    loads = [r["load"] for runs in results.values() for r in runs]
    cores = os.cpu_count()
    text = "\n".join(
        [
            "# GLMs: probnn.bayes.glm vs NumPyro (NUTS and variational inference)",
            "",
            f"{CHAINS} chains, {WARMUP:,} warm-up + {DRAWS:,} draws each for NUTS; {VI_STEPS:,} steps "
            f"for VI (16 draws per ELBO estimate, Adam, constant 0.05 then cosine to 1 %), "
            f"{CHAINS * DRAWS:,} draws from the fit. Same model and priors in both. NUTS rows: "
            f"minimum bulk ESS per second (higher is better; ratio probnn / NumPyro). VI rows: wall "
            f"seconds (lower is better; ratio NumPyro / probnn, > 1 means probnn is faster). Each arm "
            f"in a fresh process, {args.rounds} round(s); medians. cold = first run in the process "
            f"(compilation included), warm = a second run on the same data.",
            "",
            markdown_table(
                [
                    "workload",
                    "probnn cold",
                    "NumPyro cold",
                    "probnn warm",
                    "NumPyro warm",
                    "ratio cold",
                    "ratio warm",
                    "min bulk ESS warm (probnn / NumPyro)",
                    "divergent",
                    "max mean gap (probnn sds)",
                ],
                _glm_rows(results),
            ),
            "",
            "Targets (issue 22): NUTS ratio >= 1x warm and >= 0.5x cold on both models.",
            "",
            "- load average (1 min) at the start of each run: "
            + ", ".join(f"{v:.1f}" for v in loads)
            + (
                f" on {cores} cores: the machine was shared; compare the ratios, not the absolute numbers."
                if max(loads) > cores
                else f" on {cores} cores: a quiet machine."
            ),
            "",
            "## Machine",
            "",
            *machine_description(),
            "",
        ]
    )
    print(text)
    if not args.no_write:
        write_result("mcmc_vs_numpyro_glm.md", text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arm", choices=sorted(ARMS) + sorted(GLM_ARMS), help="run one arm in this process")
    parser.add_argument(
        "--workload",
        choices=["linear", "glm"],
        default="linear",
        help="linear regression (default) or issue 22's GLM workloads",
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--no-write", action="store_true", help="do not write the results file")
    args = parser.parse_args()
    if args.arm:
        one_arm(args.arm)
        return
    if args.workload == "glm":
        glm_main(args)
        return
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _common import machine_description, markdown_table, write_result

    results = {name: [] for name in ARMS}
    loads = []
    for r in range(args.rounds):
        for name in ARMS:
            res = run_arm_process(name)
            load = res["load"]
            results[name].append(res)
            loads.append(load)
            print(
                f"round {r + 1} {name}: load {load:.1f}, cold {res['cold']['ess_per_s']:.0f} "
                f"ESS/s ({res['cold']['seconds']:.1f} s), warm {res['warm']['ess_per_s']:.0f} "
                f"ESS/s ({res['warm']['seconds']:.1f} s)",
                flush=True,
            )

    def med(name, phase, key):
        return statistics.median(r[phase][key] for r in results[name])

    rows = []
    for name in ARMS:
        runs = results[name]
        rows.append(
            [
                LABELS[name],
                f"{med(name, 'cold', 'ess_per_s'):,.0f} ("
                + ", ".join(f"{r['cold']['ess_per_s']:.0f}" for r in runs)
                + ")",
                f"{med(name, 'warm', 'ess_per_s'):,.0f} ("
                + ", ".join(f"{r['warm']['ess_per_s']:.0f}" for r in runs)
                + ")",
                f"{med(name, 'cold', 'seconds'):.1f}",
                f"{med(name, 'warm', 'seconds'):.2f}",
                f"{med(name, 'warm', 'min_ess'):,.0f}",
                f"{sum(r['cold']['divergent'] + r['warm']['divergent'] for r in runs)}",
            ]
        )
    # Ratios from the runs of the same round (side by side), then the median over rounds.
    cores = os.cpu_count()
    load_reading = (
        f"on {cores} cores: the machine was shared; compare the ratios, not the absolute numbers."
        if max(loads) > cores
        else f"on {cores} cores: a quiet machine."
    )
    ratio = {
        phase: statistics.median(
            p[phase]["ess_per_s"] / n[phase]["ess_per_s"]
            for p, n in zip(results["probnn"], results["numpyro"])
        )
        for phase in ("cold", "warm")
    }
    text = "\n".join(
        [
            "# MCMC: probnn.bayes vs NumPyro vs plain TFP NUTS",
            "",
            f"Bayesian linear regression, {ROWS:,} rows x {FEATURES} features, {CHAINS} chains, "
            f"{WARMUP:,} warm-up + {DRAWS:,} draws each; minimum bulk ESS (arviz) over intercept, "
            f"coef, sigma per second of wall time. Each arm in a fresh process, {args.rounds} "
            f"interleaved rounds; median (all rounds in brackets). cold = first run in the process "
            f"(compilation included), warm = second run on the same data.",
            "",
            markdown_table(
                [
                    "sampler",
                    "ESS/s cold",
                    "ESS/s warm",
                    "cold s",
                    "warm s",
                    "min bulk ESS (warm)",
                    "divergent",
                ],
                rows,
            ),
            "",
            f"- probnn / NumPyro, cold: **{ratio['cold']:.2f}x** (target >= 0.5x)",
            f"- probnn / NumPyro, warm: **{ratio['warm']:.2f}x** (target >= 1x)",
            "- load average (1 min) at the start of each run: "
            + ", ".join(f"{v:.1f}" for v in loads)
            + " "
            + load_reading,
            "",
            "## Reading",
            "",
            "(Written by hand after the run: what the load did to the numbers, ESS, compile time.)",
            "",
            "## Machine",
            "",
            *machine_description(),
            "",
        ]
    )
    if args.no_write:
        print(text)
    else:
        write_result("mcmc_vs_numpyro.md", text)


if __name__ == "__main__":
    main()
