"""Max-Cut with the agents shared out over processes, launched with torchrun.

Shows `maximize(..., process_group=True)`: every rank builds the same problem and makes the
same call, each runs its block of the agents, and every rank gets the same result, equal to
one process's with the same seed (docs/distributed.md). Here on the CPU with gloo:

    torchrun --standalone --nproc-per-node=2 examples/torchrun_maxcut.py --small
    torchrun --standalone --nproc-per-node=2 examples/torchrun_maxcut.py  # 1000 nodes, 256 agents

(`python -m torch.distributed.run` is the same launcher.) torchrun sets RANK, WORLD_SIZE,
MASTER_ADDR and MASTER_PORT, which init_process_group reads; rank 0 alone prints the result.
"""

import argparse
import os
import sys

import torch
import torch.distributed as dist

import sb_native


def random_maxcut(nodes: int, seed: int) -> sb_native.models.MaxCut:
    """A random unweighted graph, each pair an edge with probability 5%. Every rank draws the
    same one from the same seed: the solver checks that the ranks' problems agree."""
    g = torch.Generator().manual_seed(seed)
    pairs = torch.triu_indices(nodes, nodes, offset=1).t()
    edges = pairs[torch.rand(len(pairs), generator=g) < 0.05]
    return sb_native.models.MaxCut.from_edges(edges, n_nodes=nodes)


def main() -> None:
    parser = argparse.ArgumentParser(description="Max-Cut over torchrun processes.")
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--agents", type=int, default=256, help="in all, shared by the ranks")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--small", action="store_true", help="200 nodes, 32 agents")
    args = parser.parse_args()
    nodes, agents = (200, 32) if args.small else (args.nodes, args.agents)
    if "RANK" not in os.environ:
        sys.exit("launch with torchrun: torchrun --standalone --nproc-per-node=2 "
                 "examples/torchrun_maxcut.py --small")

    dist.init_process_group("gloo")
    try:
        model = random_maxcut(nodes, args.seed)
        # dSB on integer weights gives the same cut for any number of ranks, bit for bit.
        _, cut = model.maximize(agents=agents, mode="discrete", seed=args.seed,
                                process_group=True, verbose=False)
        if dist.get_rank() == 0:
            print(f"cut value: {cut.item():.10g} ({nodes} nodes, {agents} agents over "
                  f"{dist.get_world_size()} ranks)")
    finally:
        dist.destroy_process_group()  # the script made the group, so it destroys it


if __name__ == "__main__":
    main()
