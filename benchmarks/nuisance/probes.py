"""What a model's outputs and features are worth: accuracy of its logits, a linear probe on
the features of one layer, and the scale of those features."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from pidkit_distill import FeatureHooks

__all__ = ["accuracy", "feature_rms", "layer_features", "linear_probe"]


@torch.no_grad()
def accuracy(model, dataset, device: str = "cpu", label=None, batch_size: int = 500) -> float:
    """Accuracy of ``model``'s logits on ``dataset`` (against ``label(x)`` when given)."""
    model = model.to(device)
    correct = total = 0
    for x, y in DataLoader(dataset, batch_size=batch_size):
        target = label(x) if label is not None else y
        pred = model(x.to(device)).argmax(1).cpu()
        correct += int((pred == target).sum())
        total += len(y)
    model.cpu()
    return correct / max(total, 1)


@torch.no_grad()
def layer_features(model, layer: str, dataset, limit: int | None = None,
                   channels: int | None = None, device: str = "cpu"):
    """Flattened outputs of ``layer`` on the first ``limit`` samples of ``dataset``, as
    ``(features (N, D) numpy, labels (N,))``; ``channels=-k`` keeps the last ``k`` channels
    only (G of a nuisance teacher)."""
    if limit is not None and len(dataset) > limit:
        dataset = Subset(dataset, range(limit))
    fs, ys = [], []
    for x, y in DataLoader(dataset, batch_size=500):
        with FeatureHooks(model, [layer]) as hooks:
            model(x.to(device))
            f = hooks.collect()[0].float().cpu()
        if channels is not None:
            f = f[:, channels:]
        fs.append(f.flatten(1).numpy())
        ys.append(y.numpy())
    return np.concatenate(fs), np.concatenate(ys)


def linear_probe(model, layer: str, train, test, max_train: int = 5000,
                 channels: int | None = None, device: str = "cpu") -> float:
    """Test accuracy of a logistic regression on the standardised, flattened features of
    ``layer`` (:func:`layer_features`), fitted on at most ``max_train`` training samples:
    how usable a teacher's features are."""
    from sklearn.linear_model import LogisticRegression

    a, ya = layer_features(model, layer, train, max_train, channels, device)
    b, yb = layer_features(model, layer, test, None, channels, device)
    mu, sd = a.mean(0), a.std(0) + 1e-6
    clf = LogisticRegression(max_iter=300).fit((a - mu) / sd, ya)
    return float(clf.score((b - mu) / sd, yb))


def feature_rms(model, layer: str, dataset) -> float:
    r"""Root-mean-square activation :math:`\sqrt{\mathrm{mean}(T^2)}` of ``layer`` over
    ``dataset``: the scale a feature-matching student must regress (an untrained shallow
    CNN's features are far smaller than a trained one's; see docs/nuisance_benchmark.md)."""
    feats, _ = layer_features(model, layer, dataset)
    return float(np.sqrt(np.mean(np.square(feats, dtype=np.float64))))
