"""The classifier test of the CaloChallenge (Krause et al. 2024, arXiv:2410.21611): can a network tell generated
samples from reference samples? AUC 0.5 means no; 1.0 means always.

The reference model is the challenge's DNN: an input layer, two hidden layers of 512 LeakyReLU units and one logit,
trained with Adam on the binary cross-entropy. Its out-of-sample probabilities are calibrated by isotonic regression
fitted on a validation split, and the test split gives the AUC and the Jensen–Shannon divergence estimated from the
calibrated cross-entropy, JSD = (ln 2 − BCE) / ln 2 (0 indistinguishable, 1 disjoint). Where the challenge uses one
60/20/20 split, we use k folds (fold k tests, fold k+1 validates and calibrates, the rest trains), so every sample
is tested once, and repeat that over seeds (data split and initialisation both change): the result is the mean ±
standard deviation over seeds. A gradient-boosted tree ensemble (scikit-learn's HistGradientBoostingClassifier) is a
second model family with the same folds and calibration, as a cross-check that the DNN is not simply undertrained.

The two samples are made the same size (the larger subsampled) so that chance level is exactly 0.5 and the JSD
estimate is unbiased by class priors. Inputs are standardised with the training split's mean and standard deviation
when ``standardise`` (high-level features); voxel inputs are passed as prepared by the caller (the challenge does
not standardise them). Conventions and sources: docs/fidelity.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

FAMILIES = ("dnn", "gbdt")
_EPS = 1e-7


@dataclass(frozen=True)
class ClassifierConfig:
    """The classifier test's settings; defaults are the CaloChallenge DNN, sized for 10³–10⁴ samples per side.

    hidden, hidden_layers: the challenge's net has 2 hidden layers of 512 after the input layer, sized for 10⁵
        showers on a GPU; on 2 CPU cores with 10³–10⁴ showers per side (and ~125 trainings per comparison with
        floors) we keep its depth and use 128 units (``--classifier-hidden 512`` gives the challenge's width).

    folds: k of the k-fold split (≥ 3: one fold tests, one validates, the rest train).
    seeds: repetitions with a different split and initialisation; AUC and JSD are reported as mean ± std over them.
    epochs, patience: at most ``epochs`` passes; training stops after ``patience`` epochs without a lower validation
        loss and the best epoch's weights are kept (the challenge keeps its best epoch too).
    batch: minibatch size (the challenge uses 1000 on 10⁵ showers; 256 gives enough steps on 10³).
    """

    family: str = "dnn"
    hidden: int = 128
    hidden_layers: int = 2
    lr: float = 2e-4
    batch: int = 256
    epochs: int = 100
    patience: int = 15
    folds: int = 5
    seeds: int = 5
    standardise: bool = True

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"classifier family must be one of {', '.join(FAMILIES)}, got {self.family!r}")
        if self.folds < 3:
            raise ValueError(f"classifier folds must be >= 3 (test, validation, training), got {self.folds}")
        for name in ("hidden", "hidden_layers", "batch", "epochs", "patience", "seeds"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"classifier {name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"classifier lr must be > 0, got {self.lr}")


@dataclass(frozen=True)
class ClassifierResult:
    auc: float
    auc_std: float
    jsd: float
    jsd_std: float
    per_seed: tuple[tuple[float, float], ...]  # (auc, jsd) per seed
    n_per_class: int


def _dnn(d_in: int, cfg: ClassifierConfig) -> torch.nn.Module:
    layers: list[torch.nn.Module] = [torch.nn.Linear(d_in, cfg.hidden), torch.nn.LeakyReLU()]
    for _ in range(cfg.hidden_layers):
        layers += [torch.nn.Linear(cfg.hidden, cfg.hidden), torch.nn.LeakyReLU()]
    layers.append(torch.nn.Linear(cfg.hidden, 1))
    return torch.nn.Sequential(*layers)


def _fit_dnn(xtr, ytr, xva, yva, xte, cfg: ClassifierConfig, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train on (xtr, ytr), keep the epoch with the lowest validation BCE; probabilities on (xva, xte)."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # nn.Linear's initialisation draws from the global generator
    model = _dnn(xtr.shape[1], cfg)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    xtr_t, ytr_t = torch.from_numpy(xtr).float(), torch.from_numpy(ytr).float()
    xva_t, yva_t = torch.from_numpy(xva).float(), torch.from_numpy(yva).float()
    best, best_state, since = math.inf, None, 0
    for _ in range(cfg.epochs):
        model.train()
        for idx in torch.randperm(len(xtr_t), generator=gen).split(cfg.batch):
            opt.zero_grad(set_to_none=True)
            loss_fn(model(xtr_t[idx]).squeeze(1), ytr_t[idx]).backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            val = float(loss_fn(model(xva_t).squeeze(1), yva_t))
        if val < best - 1e-6:
            best, since = val, 0
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            since += 1
            if since >= cfg.patience:
                break
    model.load_state_dict(best_state)
    model.eval()
    with torch.no_grad():
        return (torch.sigmoid(model(xva_t).squeeze(1)).numpy().astype(np.float64),
                torch.sigmoid(model(torch.from_numpy(xte).float()).squeeze(1)).numpy().astype(np.float64))


def _fit_gbdt(xtr, ytr, xva, yva, xte, cfg: ClassifierConfig, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(max_iter=300, learning_rate=0.1, early_stopping=True,
                                           validation_fraction=0.15, n_iter_no_change=cfg.patience,
                                           random_state=seed)
    model.fit(xtr, ytr)
    return model.predict_proba(xva)[:, 1], model.predict_proba(xte)[:, 1]


def _calibrated(p_val, y_val, p_test) -> np.ndarray:
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p_val, y_val)
    return np.clip(iso.predict(p_test), _EPS, 1.0 - _EPS)


def auc_and_jsd(y, p) -> tuple[float, float]:
    """ROC AUC of probabilities ``p`` for labels ``y`` and JSD = (ln 2 − BCE)/ln 2 (balanced classes)."""
    from sklearn.metrics import roc_auc_score

    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1.0 - _EPS)
    y = np.asarray(y, dtype=np.float64)
    bce = -float(np.mean(y * np.log(p) + (1.0 - y) * np.log1p(-p)))
    return float(roc_auc_score(y, p)), (math.log(2.0) - bce) / math.log(2.0)


def _standardised(xtr, *others):
    mu, sd = xtr.mean(axis=0), xtr.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    return [(x - mu) / sd for x in (xtr, *others)]


def _one_seed(x: np.ndarray, y: np.ndarray, cfg: ClassifierConfig, seed: int) -> tuple[float, float]:
    """k-fold out-of-sample calibrated probabilities of every sample, then one AUC and JSD."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=np.int64)
    for label in (0, 1):  # stratified: each fold holds the same number of each class (±1)
        where = np.flatnonzero(y == label)
        fold[rng.permutation(where)] = np.arange(where.size) % cfg.folds
    fit = _fit_dnn if cfg.family == "dnn" else _fit_gbdt
    prob = np.empty(len(y))
    for k in range(cfg.folds):
        te, va = fold == k, fold == (k + 1) % cfg.folds
        tr = ~(te | va)
        xtr, xva, xte = (x[tr], x[va], x[te])
        if cfg.standardise:
            xtr, xva, xte = _standardised(xtr, xva, xte)
        p_val, p_test = fit(xtr, y[tr], xva, y[va], xte, cfg, (seed + 7919 * k) % 2**31)
        prob[te] = _calibrated(p_val, y[va], p_test)
    return auc_and_jsd(y, prob)


def classifier_test(x_ref, x_test, cfg: ClassifierConfig = ClassifierConfig(), seed: int = 0) -> ClassifierResult:
    """AUC and JSD (mean ± std over ``cfg.seeds``) of a classifier separating ``x_test`` (N_t, d) from ``x_ref``
    (N_r, d). The larger sample is subsampled to the smaller's size, afresh for every seed."""
    x_ref = np.asarray(x_ref, dtype=np.float64)
    x_test = np.asarray(x_test, dtype=np.float64)
    if x_ref.ndim != 2 or x_test.ndim != 2 or x_ref.shape[1] != x_test.shape[1]:
        raise ValueError(f"classifier inputs must be (N, d) with the same d, got {x_ref.shape} and {x_test.shape}")
    n = min(len(x_ref), len(x_test))
    if n < 2 * cfg.folds:
        raise ValueError(f"the classifier test needs at least {2 * cfg.folds} samples per class for {cfg.folds} "
                         f"folds, got {n}")
    if not (np.all(np.isfinite(x_ref)) and np.all(np.isfinite(x_test))):
        raise ValueError("classifier inputs contain NaN or inf")
    per_seed = []
    for s in range(cfg.seeds):
        rng = np.random.default_rng((seed, s))
        r = x_ref[np.sort(rng.choice(len(x_ref), n, replace=False))] if len(x_ref) > n else x_ref
        t = x_test[np.sort(rng.choice(len(x_test), n, replace=False))] if len(x_test) > n else x_test
        x = np.concatenate([r, t])
        y = np.concatenate([np.zeros(n), np.ones(n)])
        per_seed.append(_one_seed(x, y, cfg, int(rng.integers(2**31))))
    arr = np.asarray(per_seed)
    std = arr.std(axis=0, ddof=1) if len(arr) > 1 else np.zeros(2)
    return ClassifierResult(float(arr[:, 0].mean()), float(std[0]), float(arr[:, 1].mean()), float(std[1]),
                            tuple((float(a), float(j)) for a, j in arr), n)
