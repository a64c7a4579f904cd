"""Markowitz portfolio with integer lots.

Shows `sb_native.models.Markowitz`: it maximizes  w·mu - (gamma/2) wᵀ Σ w  over whole lots
w_i in 0 .. 2^bits - 1, on a seeded random market (two market factors plus each asset's own
risk for the covariance Σ, expected returns mu between 2% and 12%).

    python examples/portfolio.py              # 20 assets, 0 to 7 lots each
    python examples/portfolio.py --small      # 6 assets, 0 to 3 lots each
"""

import argparse

import torch

import sb_native


def random_market(assets: int, seed: int):
    """Covariance (assets, assets) and expected returns (assets,), in torch's default float32:
    Markowitz rejects float64 data (as simulated-bifurcation 2.0.0 does)."""
    g = torch.Generator().manual_seed(seed)
    loadings = 0.2 * torch.randn(assets, 2, generator=g)
    own_risk = 0.02 + 0.04 * torch.rand(assets, generator=g)
    covariance = loadings @ loadings.T + torch.diag(own_risk)  # positive definite
    expected_return = 0.02 + 0.10 * torch.rand(assets, generator=g)
    return covariance, expected_return


def main() -> None:
    parser = argparse.ArgumentParser(description="Markowitz portfolio with integer lots.")
    parser.add_argument("--assets", type=int, default=20)
    parser.add_argument("--bits", type=int, default=3, help="lots per asset: 0 .. 2^bits - 1")
    parser.add_argument("--risk", type=float, default=0.5, help="risk aversion gamma")
    parser.add_argument("--agents", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--small", action="store_true", help="6 assets, 0 to 3 lots each")
    args = parser.parse_args()
    assets, bits = (6, 2) if args.small else (args.assets, args.bits)

    covariance, expected_return = random_market(assets, args.seed)
    model = sb_native.models.Markowitz(covariance, expected_return,
                                       risk_coefficient=args.risk, number_of_bits=bits)
    lots, objective = model.maximize(agents=args.agents, seed=args.seed, verbose=False)

    print(f"{assets} assets, 0 to {2 ** bits - 1} lots each, risk aversion {args.risk:g}")
    print("lots:", [int(x) for x in lots.tolist()])
    print(f"expected return: {(lots @ expected_return).item():.4f}, "
          f"variance: {(lots @ covariance @ lots).item():.4f}")
    print(f"objective: {objective.item():.4f}")


if __name__ == "__main__":
    main()
