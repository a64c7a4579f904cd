"""Training a small network with QIMADTorch, a population-based torch.optim optimizer.

Shows `sb_native.QIMADTorch`: a swarm of `num_agents` copies of the weights, each step
calling the closure once per agent (the parameters point at that agent's weights during the
call), then moving the agents (RMSProp, attraction to the best, pull towards neighbours,
tunnelling) and leaving the model holding the best weights seen. The task: a 2-16-2 MLP
classifying two interleaved half-moons, generated with torch from a seed.

    python examples/qimad_network.py              # 8 agents, 300 steps
    python examples/qimad_network.py --small      # 4 agents, 40 steps
"""

import argparse
import math

import torch

import sb_native


def two_moons(points: int, generator: torch.Generator):
    """Points (points, 2) on two noisy interleaved half-circles, labels (points,) 0 or 1."""
    angle = math.pi * torch.rand(points, generator=generator)
    label = torch.randint(0, 2, (points,), generator=generator)
    upper = torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    lower = torch.tensor([1.0, 0.5]) - upper  # the second moon: the first turned and shifted
    x = torch.where(label[:, None] == 1, lower, upper)
    return x + 0.1 * torch.randn(points, 2, generator=generator), label


def main() -> None:
    parser = argparse.ArgumentParser(description="QIMADTorch training a small MLP.")
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--small", action="store_true", help="4 agents, 40 steps")
    args = parser.parse_args()
    agents, steps = (4, 40) if args.small else (args.agents, args.steps)
    # A model this small runs fastest on one thread: a second one only adds wake-up latency
    # per closure call.
    torch.set_num_threads(1)

    x, y = two_moons(256, torch.Generator().manual_seed(args.seed))
    torch.manual_seed(args.seed)  # the network's initial weights
    model = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
    criterion = torch.nn.CrossEntropyLoss()
    # total_steps sets the length of the cosine cooling of the tunnelling temperature.
    optimizer = sb_native.QIMADTorch(model.parameters(), num_agents=agents, seed=args.seed,
                                     total_steps=steps)

    def closure():
        # Called once per agent: like torch.optim.LBFGS's closure, it must zero the
        # gradients, compute the loss and call backward.
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        return loss

    with torch.no_grad():
        initial = criterion(model(x), y).item()
    for _ in range(steps):
        optimizer.step(closure)
    with torch.no_grad():  # the model now holds the swarm's best weights
        logits = model(x)
        final = criterion(logits, y).item()
        accuracy = (logits.argmax(dim=1) == y).float().mean().item()

    print(f"{agents} agents, {steps} steps, {len(y)} points")
    print(f"loss before: {initial:.4f}")
    print(f"loss after: {final:.4f} (accuracy {accuracy:.1%})")


if __name__ == "__main__":
    main()
