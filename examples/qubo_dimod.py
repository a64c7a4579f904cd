"""A QUBO built with dimod, solved with sb_native's dimod sampler.

Shows `sb_native.dimod.SimulatedBifurcationSampler`, a `dimod.Sampler`: any code written for
dimod samplers can use Simulated Bifurcation. The QUBO has seeded random integer weights
(so energies are exact), and on up to 16 variables the best sample is checked against
`dimod.ExactSolver`, which enumerates all 2^n assignments.

    python examples/qubo_dimod.py             # 64 variables, no exact check
    python examples/qubo_dimod.py --small     # 12 variables, checked against ExactSolver

dimod is optional (pip install 'sb_native[dimod]'); without it the script says so and exits.
"""

import argparse

import numpy as np

try:
    import dimod
except ImportError:
    dimod = None

EXACT_MAX_VARIABLES = 16  # ExactSolver holds all 2^n samples: 65,536 at 16 variables


def random_qubo(variables: int, seed: int) -> "dimod.BinaryQuadraticModel":
    """x^T Q x over x in {0, 1}^n with integer Q_ij in [-5, 5], half of the couplers zero."""
    rng = np.random.default_rng(seed)
    linear = {i: int(rng.integers(-5, 6)) for i in range(variables)}
    quadratic = {(i, j): int(rng.integers(-5, 6)) for i in range(variables)
                 for j in range(i + 1, variables) if rng.random() < 0.5}
    return dimod.BinaryQuadraticModel(linear, quadratic, 0.0, dimod.BINARY)


def main() -> None:
    parser = argparse.ArgumentParser(description="A dimod QUBO solved by sb_native.")
    parser.add_argument("--variables", type=int, default=64)
    parser.add_argument("--agents", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--small", action="store_true", help="12 variables, exact check")
    args = parser.parse_args()
    if dimod is None:
        print("dimod is not installed (pip install 'sb_native[dimod]'): nothing to run.")
        return
    # Imported here: sb_native.dimod itself needs dimod.
    from sb_native.dimod import SimulatedBifurcationSampler

    bqm = random_qubo(12 if args.small else args.variables, args.seed)
    sampleset = SimulatedBifurcationSampler().sample(bqm, agents=args.agents, seed=args.seed)
    best = sampleset.first  # lowest energy over the agents' samples
    print(f"QUBO: {bqm.num_variables} variables, {bqm.num_interactions} couplers")
    print("best sample:", "".join(str(best.sample[v]) for v in bqm.variables))
    print(f"SB energy: {best.energy:g}")
    if bqm.num_variables <= EXACT_MAX_VARIABLES:
        optimum = dimod.ExactSolver().sample(bqm).first.energy
        found = "yes" if best.energy == optimum else "no"  # integer weights: exact comparison
        print(f"exact optimum: {optimum:g}, SB found the optimum: {found}")
    else:
        print(f"exact check skipped: more than {EXACT_MAX_VARIABLES} variables")


if __name__ == "__main__":
    main()
