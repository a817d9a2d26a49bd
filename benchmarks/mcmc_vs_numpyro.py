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

    python benchmarks/mcmc_vs_numpyro.py            # 3 interleaved rounds, writes the results file
    python benchmarks/mcmc_vs_numpyro.py --arm numpyro   # one arm in this process (JSON line)
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
        idata = probnn.bayes.linear_regression(x, y, num_chains=CHAINS, num_samples=DRAWS,
                                               num_warmup=WARMUP, seed=seed, verbose=0)
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
    mcmc = MCMC(NUTS(model), num_warmup=WARMUP, num_samples=DRAWS, num_chains=CHAINS,
                chain_method="vectorized", progress_bar=False, jit_model_args=True)

    def run(seed):
        t = time.perf_counter()
        mcmc.run(jax.random.PRNGKey(seed), xc, y=yj, extra_fields=("diverging",))
        samples = mcmc.get_samples(group_by_chain=True)
        jax.block_until_ready(samples)
        wall = time.perf_counter() - t
        coef = np.asarray(samples["coef"])
        post = {"intercept": np.asarray(samples["intercept_c"]) - coef @ xm, "coef": coef,
                "sigma": np.asarray(samples["sigma"])}
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
        tfp.mcmc.NoUTurnSampler(log_prob, step_size=0.1), num_adaptation_steps=int(0.8 * WARMUP),
        target_accept_prob=0.8)

    @tf.function(jit_compile=True)
    def chain(init, seed):
        return tfp.mcmc.sample_chain(DRAWS, init, kernel=kernel, num_burnin_steps=WARMUP,
                                     trace_fn=lambda _, r: r.inner_results.has_divergence,
                                     seed=seed)

    def run(seed):
        init = tf.constant(np.random.default_rng(seed).uniform(-2, 2, (CHAINS, FEATURES + 2)),
                           tf.float32)
        t = time.perf_counter()
        states, divergent = chain(init, tf.constant([seed, 1]))
        states = states.numpy()
        wall = time.perf_counter() - t
        u = np.moveaxis(states, 0, 1)  # (chain, draw, dim)
        coef = u[..., 1:-1] * sy / sx
        post = {"intercept": ym + sy * u[..., 0] - coef @ xm, "coef": coef,
                "sigma": sy * np.exp(u[..., -1])}
        return wall, post, int(divergent.numpy().sum())

    return run


ARMS = {"probnn": arm_probnn, "numpyro": arm_numpyro, "tfp": arm_tfp}
LABELS = {"probnn": "probnn.bayes.linear_regression",
          "numpyro": "NumPyro NUTS (chain_method='vectorized')",
          "tfp": "tfp.mcmc.NoUTurnSampler + dual averaging (XLA)"}


def one_arm(name):
    x, y = make_data()
    run = ARMS[name](x, y)
    out = {"arm": name}
    for label, seed in (("cold", 1), ("warm", 2)):
        wall, post, divergent = run(seed)
        ess = min_bulk_ess(post)
        out[label] = {"seconds": wall, "min_ess": ess, "ess_per_s": ess / wall,
                      "divergent": divergent}
    print(json.dumps(out))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arm", choices=sorted(ARMS), help="run one arm in this process")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--no-write", action="store_true", help="do not write the results file")
    args = parser.parse_args()
    if args.arm:
        one_arm(args.arm)
        return
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _common import machine_description, markdown_table, write_result

    results = {name: [] for name in ARMS}
    loads = []
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
         os.environ.get("PYTHONPATH", "")]))
    for r in range(args.rounds):
        for name in ARMS:
            load = os.getloadavg()[0]
            proc = subprocess.run([sys.executable, __file__, "--arm", name], env=env,
                                  capture_output=True, text=True)
            if proc.returncode:
                sys.exit(f"arm {name} failed:\n{proc.stderr[-3000:]}")
            line = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1]
            res = json.loads(line)
            res["load"] = load
            results[name].append(res)
            loads.append(load)
            print(f"round {r + 1} {name}: load {load:.1f}, cold {res['cold']['ess_per_s']:.0f} "
                  f"ESS/s ({res['cold']['seconds']:.1f} s), warm {res['warm']['ess_per_s']:.0f} "
                  f"ESS/s ({res['warm']['seconds']:.1f} s)", flush=True)

    def med(name, phase, key):
        return statistics.median(r[phase][key] for r in results[name])

    rows = []
    for name in ARMS:
        runs = results[name]
        rows.append([
            LABELS[name],
            f"{med(name, 'cold', 'ess_per_s'):,.0f} ("
            + ", ".join(f"{r['cold']['ess_per_s']:.0f}" for r in runs) + ")",
            f"{med(name, 'warm', 'ess_per_s'):,.0f} ("
            + ", ".join(f"{r['warm']['ess_per_s']:.0f}" for r in runs) + ")",
            f"{med(name, 'cold', 'seconds'):.1f}", f"{med(name, 'warm', 'seconds'):.2f}",
            f"{med(name, 'warm', 'min_ess'):,.0f}",
            f"{sum(r['cold']['divergent'] + r['warm']['divergent'] for r in runs)}",
        ])
    # Ratios from the runs of the same round (side by side), then the median over rounds.
    cores = os.cpu_count()
    load_reading = (f"on {cores} cores: the machine was shared; compare the ratios, not the absolute numbers."
                    if max(loads) > cores else f"on {cores} cores: a quiet machine.")
    ratio = {phase: statistics.median(
        p[phase]["ess_per_s"] / n[phase]["ess_per_s"]
        for p, n in zip(results["probnn"], results["numpyro"])) for phase in ("cold", "warm")}
    text = "\n".join([
        "# MCMC: probnn.bayes vs NumPyro vs plain TFP NUTS",
        "",
        f"Bayesian linear regression, {ROWS:,} rows x {FEATURES} features, {CHAINS} chains, "
        f"{WARMUP:,} warm-up + {DRAWS:,} draws each; minimum bulk ESS (arviz) over intercept, "
        f"coef, sigma per second of wall time. Each arm in a fresh process, {args.rounds} "
        f"interleaved rounds; median (all rounds in brackets). cold = first run in the process "
        f"(compilation included), warm = second run on the same data.",
        "",
        markdown_table(["sampler", "ESS/s cold", "ESS/s warm", "cold s", "warm s",
                        "min bulk ESS (warm)", "divergent"], rows),
        "",
        f"- probnn / NumPyro, cold: **{ratio['cold']:.2f}x** (target >= 0.5x)",
        f"- probnn / NumPyro, warm: **{ratio['warm']:.2f}x** (target >= 1x)",
        f"- load average (1 min) at the start of each run: "
        + ", ".join(f"{v:.1f}" for v in loads) + " " + load_reading,
        "",
        "## Reading",
        "",
        "(Written by hand after the run: what the load did to the numbers, ESS, compile time.)",
        "",
        "## Machine",
        "",
        *machine_description(),
        "",
    ])
    if args.no_write:
        print(text)
    else:
        write_result("mcmc_vs_numpyro.md", text)


if __name__ == "__main__":
    main()
