"""Shared estimator numerics: the CPU LAPACK paths (gram, eigh_project, LogME's tridiagonal solves) vs torch."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

from hf_spider.estimators._linalg import eigh_project, gram

# The package re-exports the function ``logme`` under the module's name: fetch the module itself.
logme_module = importlib.import_module("hf_spider.estimators.logme")


def _spd(D: int, dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    """A symmetric PSD matrix with well-separated eigenvalues, so eigenvectors are unique up to sign."""
    rng = np.random.default_rng(seed)
    Q = np.linalg.qr(rng.normal(size=(D, D)))[0]
    return torch.from_numpy((Q * np.linspace(1.0, 10.0, D)) @ Q.T).to(dtype)


@pytest.mark.parametrize("D", [1, 2, 57])
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_eigh_project_matches_a_full_eigh(D: int, dtype: torch.dtype, tol: float) -> None:
    A = _spd(D, dtype)
    B = torch.from_numpy(np.random.default_rng(1).normal(size=(D, 3))).to(dtype)
    w, proj = eigh_project(A, B)
    w_ref, V = torch.linalg.eigh(A)
    assert w.dtype == proj.dtype == dtype
    assert proj.shape == (D, 3)
    torch.testing.assert_close(w, w_ref, rtol=tol, atol=tol)
    torch.testing.assert_close(proj.abs(), (V.T @ B).abs(), rtol=tol, atol=tol)  # each eigenvector's sign is free


def test_eigh_project_reads_only_the_lower_triangle() -> None:
    A = _spd(20, torch.float64)
    B = torch.eye(20, dtype=torch.float64)[:, :4]
    w, proj = eigh_project(A, B)
    w_tril, proj_tril = eigh_project(A.tril() + 7 * torch.ones(20, 20, dtype=torch.float64).triu(1), B)
    torch.testing.assert_close(w_tril, w)
    torch.testing.assert_close(proj_tril.abs(), proj.abs())


def test_gram_is_the_transposed_product_for_any_layout() -> None:
    x = torch.from_numpy(np.random.default_rng(2).normal(size=(30, 8)))
    y = torch.from_numpy(np.random.default_rng(3).normal(size=(30, 5)))
    torch.testing.assert_close(gram(x).tril(), (x.T @ x).tril())  # the lower triangle is the contract on the CPU
    torch.testing.assert_close(gram(x.T).tril(), (x @ x.T).tril())  # a transposed view, as LogME passes when N <= D
    torch.testing.assert_close(gram(x, y), x.T @ y)
    torch.testing.assert_close(gram(x[:, ::2], y[:, 1:]), x[:, ::2].T @ y[:, 1:])
    torch.testing.assert_close(gram(x.float(), y.float()), (x.T @ y).float())


@pytest.mark.parametrize(("n", "d", "zero_cols"), [(80, 12, 0), (80, 12, 3), (20, 50, 0), (60, 1, 0)])
def test_logme_tridiagonal_path_equals_the_eigen_path(n: int, d: int, zero_cols: int) -> None:
    """The CPU path (tridiagonal solves, no eigenvectors) and the device path (eigh) give the same m2, res2, sigma,
    for N > D, N <= D, a rank-deficient Gram matrix and a single feature (the 1 x 1 system)."""
    rng = np.random.default_rng(4)
    F = torch.from_numpy(np.hstack([rng.normal(size=(n, d)), np.zeros((n, zero_cols))]))
    Y = torch.nn.functional.one_hot(torch.from_numpy(np.arange(n) % 3), 3).double()
    features_side = n > F.shape[1]
    K, P = (gram(F), gram(F, Y)) if features_side else (gram(F.T), Y)
    y2 = (Y * Y).sum(dim=0)
    sigma_e, quad_e = logme_module._eigen_quad(K, P, y2, features_side)
    sigma_t, quad_t = logme_module._tridiagonal_quad(K, P, y2, features_side)
    torch.testing.assert_close(sigma_t, sigma_e, rtol=1e-9, atol=1e-9)
    for lam in (torch.tensor([1e-3, 1.0, 50.0], dtype=torch.float64), torch.full((3,), 7.0, dtype=torch.float64)):
        for got, want in zip(quad_t(lam), quad_e(lam), strict=True):
            torch.testing.assert_close(got, want, rtol=1e-8, atol=1e-10)
