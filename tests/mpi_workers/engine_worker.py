"""One rank of the engine tests, started by ``mpirun -n 2`` (or ``horovodrun -np 2 --gloo``) from tests/test_engines.py.

    engine_worker.py discover                           print this rank's LaunchInfo, resolved master address and
                                                        rank 0's hostname (by the MPI broadcast) as JSON
    engine_worker.py ENGINE checks CHECK[,CHECK] OUT    run the named checks, rank 0 writes {check: result} to OUT
    engine_worker.py ENGINE loop SECONDS PIDFILE        all-reduce in a loop; rank 1 writes its pid to PIDFILE

Checks (each result has ``ok``; the worker exits 1 when one is not ok):
  collectives  allreduce_mean/_sum, broadcast_object from two roots, allgather_object
  gan          a few GAN steps in train mode (BatchNorm batch statistics, Adam): losses finite, parameters and
               optimizer state bit-identical on all ranks, buffers identical after broadcast_buffers
  resume       an optimizer state loaded before wrap_optimizer is kept (Horovod's wrapper would start empty)
  grad         the SGD(lr=1) updates of one D step and one G step on N ranks x batch B equal those of one process on
               the N*B concatenated batch (BatchNorm in eval mode, no dropout: no batch-statistics coupling)
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import sys
import time
from dataclasses import asdict, replace

import torch
import torch.nn.functional as F
from torch import nn

from hpcgen.dist.engine import Engine, make_engine, state_sha256
from hpcgen.dist.launch import discover, resolve_master_addr

Z_DIM, B = 8, 6
# The tolerance of the 2-rank vs 1-rank comparison: float32, and a different summation order (per-rank means
# averaged vs one mean over the whole batch).
RTOL, ATOL = 1e-5, 1e-6


def make_models(seed: int) -> tuple[nn.Module, nn.Module]:
    """A tiny unconditional DCGAN pair with BatchNorm on both sides: G (B, 8) -> (B, 1, 4, 4), D -> (B, 1) logits."""
    torch.manual_seed(seed)
    G = nn.Sequential(nn.Linear(Z_DIM, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 16),
                      nn.Unflatten(1, (1, 4, 4)))
    D = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.LeakyReLU(0.2), nn.Flatten(),
                      nn.Linear(64, 1))
    return G, D


def gan_step(engine: Engine, G, D, opt_G, opt_D, real: torch.Tensor, z: torch.Tensor) -> tuple[float, float]:
    """The trainer's step, verbatim: D on real and fake in two forwards, then G through the bare, frozen D."""
    bce = F.binary_cross_entropy_with_logits
    fake = G(z)
    opt_D.zero_grad()
    out_r = D(real)
    out_f = D(fake.detach())
    loss_D = bce(out_r, torch.ones_like(out_r)) + bce(out_f, torch.zeros_like(out_f))
    loss_D.backward()
    opt_D.step()

    for p in D.parameters():
        p.requires_grad_(False)
    opt_G.zero_grad()
    out = engine.unwrap(D)(G(z))
    loss_G = bce(out, torch.ones_like(out))
    loss_G.backward()
    opt_G.step()
    for p in D.parameters():
        p.requires_grad_(True)
    return loss_D.item(), loss_G.item()


def check_collectives(engine: Engine) -> dict:
    r, n = engine.rank, engine.world_size
    t = torch.tensor([r + 1.0, 10.0 * (r + 1)])
    mean, total = engine.allreduce_mean(t), engine.allreduce_sum(t)
    expect_sum = torch.tensor([n * (n + 1) / 2, 10 * n * (n + 1) / 2])
    from_0 = engine.broadcast_object({"from": r, "payload": [r] * 3}, root=0)
    from_last = engine.broadcast_object({"from": r}, root=n - 1)
    gathered = engine.allgather_object(f"rank{r}")
    engine.barrier()
    mine = {
        "mean": torch.equal(mean, expect_sum / n), "sum": torch.equal(total, expect_sum),
        "input_untouched": torch.equal(t, torch.tensor([r + 1.0, 10.0 * (r + 1)])) and mean is not t,
        "broadcast_root0": from_0 == {"from": 0, "payload": [0, 0, 0]},
        "broadcast_root_last": from_last == {"from": n - 1},
        "allgather": gathered == [f"rank{i}" for i in range(n)],
    }
    per_rank = engine.allgather_object(mine)
    return {"ok": all(all(m.values()) for m in per_rank), "per_rank": per_rank, "world_size": n}


def optimizer_sha256(opt: torch.optim.Optimizer) -> str:
    h = hashlib.sha256()
    for state in opt.state.values():
        for key, v in sorted(state.items()):
            h.update(key.encode())
            h.update(v.detach().cpu().contiguous().numpy().tobytes() if torch.is_tensor(v) else repr(v).encode())
    return h.hexdigest()


def check_gan(engine: Engine, steps: int = 3) -> dict:
    G, D = make_models(seed=100 + engine.rank)  # different inits: wrap_model must make them equal
    G, D = engine.wrap_model(G), engine.wrap_model(D)
    opt_G = engine.wrap_optimizer(torch.optim.Adam(G.parameters(), lr=2e-3, betas=(0.5, 0.999)), G)
    opt_D = engine.wrap_optimizer(torch.optim.Adam(D.parameters(), lr=2e-3, betas=(0.5, 0.999)), D)
    gen = torch.Generator().manual_seed(1000 + engine.rank)  # each rank its own data
    losses = []
    for _ in range(steps):
        real = 0.5 + 0.1 * torch.randn(B, 1, 4, 4, generator=gen)
        z = torch.randn(B, Z_DIM, generator=gen)
        losses.append(gan_step(engine, G, D, opt_G, opt_D, real.to(engine.device), z.to(engine.device)))
    bare_G, bare_D = engine.unwrap(G), engine.unwrap(D)

    params = [state_sha256(bare_G, buffers=False), state_sha256(bare_D, buffers=False)]
    before = [state_sha256(bare_G), state_sha256(bare_D)]
    engine.broadcast_buffers(G)
    engine.broadcast_buffers(D)
    full = [state_sha256(bare_G), state_sha256(bare_D)]
    mine = {"losses": losses, "params": params, "opt": [optimizer_sha256(opt_G), optimizer_sha256(opt_D)],
            "state_before_buffer_broadcast": before, "state": full}
    per_rank = engine.allgather_object(mine)
    finite = all(math.isfinite(v) for m in per_rank for pair in m["losses"] for v in pair)
    same = {key: all(m[key] == per_rank[0][key] for m in per_rank) for key in ("params", "opt", "state")}
    data_differ = len({m["losses"][0][0] for m in per_rank}) == len(per_rank)
    return {"ok": finite and all(same.values()) and data_differ, "finite": finite, "identical": same,
            "ranks_saw_different_data": data_differ,
            "buffers_identical_before_broadcast": all(m["state_before_buffer_broadcast"] == per_rank[0][
                "state_before_buffer_broadcast"] for m in per_rank),
            "losses_rank0": per_rank[0]["losses"]}


def check_grad(engine: Engine) -> dict:
    r, n = engine.rank, engine.world_size
    G, D = make_models(seed=7)
    with torch.no_grad():  # non-trivial running statistics, so eval-mode BatchNorm is not the identity
        gen = torch.Generator().manual_seed(3)
        for m in (*G.modules(), *D.modules()):
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.5, 0.5, generator=gen)
                m.running_var.uniform_(0.5, 2.0, generator=gen)
    G.eval()
    D.eval()
    G_ref, D_ref = copy.deepcopy(G), copy.deepcopy(D)
    gen = torch.Generator().manual_seed(4)
    real_all = 0.5 + 0.1 * torch.randn(n * B, 1, 4, 4, generator=gen)
    z_all = torch.randn(n * B, Z_DIM, generator=gen)
    mine = slice(r * B, (r + 1) * B)

    def updates(engine_, G_, D_, real, z):
        """SGD(lr=1) parameter updates of D, then of G, made by one GAN step: the gradients the optimizer applied."""
        G_, D_ = engine_.wrap_model(G_), engine_.wrap_model(D_)
        bare_G, bare_D = engine_.unwrap(G_), engine_.unwrap(D_)
        opt_G = engine_.wrap_optimizer(torch.optim.SGD(bare_G.parameters(), lr=1.0), G_)
        opt_D = engine_.wrap_optimizer(torch.optim.SGD(bare_D.parameters(), lr=1.0), D_)
        p0 = [p.detach().clone() for p in (*bare_D.parameters(), *bare_G.parameters())]
        gan_step(engine_, G_, D_, opt_G, opt_D, real.to(engine_.device), z.to(engine_.device))
        return [(a - b.detach()).cpu() for a, b in zip(p0, (*bare_D.parameters(), *bare_G.parameters()))]

    got = updates(engine, G, D, real_all[mine], z_all[mine])
    result = {"ok": True}
    if r == 0:
        ref = updates(_Single(engine.device), G_ref, D_ref, real_all, z_all)
        err = [float((g - e).abs().max()) for g, e in zip(got, ref)]
        close = all(torch.allclose(g, e, rtol=RTOL, atol=ATOL) for g, e in zip(got, ref))
        nonzero = all(float(e.abs().max()) > 0 for e in ref)
        result = {"ok": close and nonzero, "max_abs_err": max(err), "all_updates_nonzero": nonzero,
                  "rtol": RTOL, "atol": ATOL}
    return engine.broadcast_object(result)


def check_resume(engine: Engine) -> dict:
    """An optimizer state loaded before wrapping (a resumed run: the same checkpoint on every rank) survives
    wrap_optimizer unchanged, and training continues from it identically on all ranks."""
    _, D = make_models(seed=11)
    opt = torch.optim.AdamW(D.parameters(), lr=1e-2, weight_decay=0.1)
    gen = torch.Generator().manual_seed(12)  # the same "checkpointed" step on every rank
    D(torch.randn(B, 1, 4, 4, generator=gen)).mean().backward()
    opt.step()
    opt.zero_grad()
    before = (optimizer_sha256(opt), state_sha256(D))
    D = engine.wrap_model(D)
    opt = engine.wrap_optimizer(opt, D)
    kept = (optimizer_sha256(opt), state_sha256(engine.unwrap(D))) == before
    opt.zero_grad()
    D(torch.randn(B, 1, 4, 4) + engine.rank).mean().backward()  # a different batch per rank
    opt.step()
    steps = sorted({float(s["step"]) for s in opt.state.values()})
    per_rank = engine.allgather_object({"kept": kept, "steps": steps, "opt": optimizer_sha256(opt),
                                        "params": state_sha256(engine.unwrap(D), buffers=False)})
    same = all(m["opt"] == per_rank[0]["opt"] and m["params"] == per_rank[0]["params"] for m in per_rank)
    ok = all(m["kept"] and m["steps"] == [2.0] for m in per_rank) and same
    return {"ok": ok, "state_kept": [m["kept"] for m in per_rank], "steps": [m["steps"] for m in per_rank],
            "identical_after_a_step": same}


class _Single:
    """The 1-process reference: no wrapping, no communication."""

    rank, world_size, local_rank = 0, 1, 0

    def __init__(self, device):
        self.device = device

    def wrap_model(self, m):
        return m.to(self.device)

    def unwrap(self, m):
        return m

    def wrap_optimizer(self, opt, m):
        return opt


CHECKS = {"collectives": check_collectives, "gan": check_gan, "grad": check_grad, "resume": check_resume}


def main(argv: list[str]) -> int:
    if argv[0] == "discover":
        info = discover()
        rank0_host = resolve_master_addr(replace(info, master_addr=None))  # the multi-host path, forced
        print(json.dumps({"info": asdict(info), "master": resolve_master_addr(info), "rank0_host": rank0_host}),
              flush=True)
        return 0
    engine = make_engine(argv[0], device="cpu", timeout_s=float(os.environ.get("ENGINE_TIMEOUT_S", "120")))
    if argv[1] == "loop":
        seconds, pid_file = float(argv[2]), argv[3]
        if engine.rank == 1:
            with open(pid_file + ".tmp", "w") as fh:
                fh.write(str(os.getpid()))
            os.replace(pid_file + ".tmp", pid_file)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            engine.allreduce_sum(torch.ones(1024))
        engine.close()
        return 0
    names, out = argv[2].split(","), argv[3]
    results = {}
    for name in names:
        results[name] = CHECKS[name](engine)
        if engine.rank == 0:  # after every check, so a crash later keeps what was measured
            with open(out, "w") as fh:
                json.dump(results, fh, indent=1)
    engine.close()
    return 0 if all(r["ok"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
