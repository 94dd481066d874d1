"""Fidelity: how far a generated sample is from a reference, each number beside the reference-vs-reference floor.

The evaluation follows the Fast Calorimeter Simulation Challenge (Krause et al. 2024, arXiv:2410.21611) and JetNet
(Kansal et al. 2023, arXiv:2211.10295); docs/fidelity.md states every convention with its source.

- :mod:`hpcgen.fidelity.floors`: disjoint-halves bootstrap floors (p50, p95) and the verdict "within floor p95".
- :mod:`hpcgen.fidelity.classifier`: the CaloChallenge DNN classifier test, k-fold over seeds, AUC and JSD.
- :mod:`hpcgen.fidelity.frechet`: FPD and KPD on high-level features.

One-dimensional distances (separation power, W1, KS) live in :mod:`hpcgen.physics.distances`.
"""
