"""The contrastive loss under DDP: two gloo ranks, each with half the tokens, give the one-process loss and
gradients of the whole batch (rows here × columns gathered from every rank, gradients sent back)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from toothmcl_models.config import LossConfig, TokenConfig
from toothmcl_models.losses import ToothMCLLoss
from toothmcl_models.tokens import TokenSet

N_CBCT, N_IOS = 24, 16  # per rank


def _tokens(n: int, seed: int) -> TokenSet:
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (n,), generator=g) + 10  # teeth 10..13, some 10 → relabelled 0 below
    labels[labels == 10] = 0
    patient = torch.randint(0, 2, (n,), generator=g)
    return TokenSet(
        embeddings=torch.nn.functional.normalize(torch.randn(n, 8, generator=g), dim=-1),
        centres=torch.zeros(n, 3, dtype=torch.float64),
        labels=labels,
        match=labels.clone(),
        sample=patient.clone(),
        patient=patient,
    )


def _slice(t: TokenSet, s: slice, embeddings: torch.Tensor) -> TokenSet:
    return TokenSet(embeddings, t.centres[s], t.labels[s], t.match[s], t.sample[s], t.patient[s])


def _loss(kind: str) -> ToothMCLLoss:
    return ToothMCLLoss(LossConfig(kind=kind, init_bias=-2.0), TokenConfig())  # type: ignore[arg-type]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rank(rank: int, kind: str, folder: str, port: int) -> None:
    # a TCP store as torchrun uses: a FileStore's teardown (the last rank deletes the file) raced with the other
    # rank's exit and aborted one process under load (CI: "terminate called without an active exception")
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    torch.set_num_threads(1)
    cbct, ios = _tokens(2 * N_CBCT, 0), _tokens(2 * N_IOS, 1)
    sc, si = slice(rank * N_CBCT, (rank + 1) * N_CBCT), slice(rank * N_IOS, (rank + 1) * N_IOS)
    zc = cbct.embeddings[sc].clone().requires_grad_(True)
    zi = ios.embeddings[si].clone().requires_grad_(True)
    criterion = _loss(kind)
    out = criterion(_slice(cbct, sc, zc), _slice(ios, si, zi))
    out.total.backward()
    scale_grad = criterion.log_scale["cross"].grad
    torch.save(
        {"total": out.total.detach(), "zc": zc.grad, "zi": zi.grad, "parts": out.parts, "scale": scale_grad},
        f"{folder}/rank{rank}.pt",
    )
    del out, zc, zi, criterion  # the all_gather autograd nodes hold the process group: free them before teardown
    dist.barrier()  # neither rank tears gloo down while the other may still be sending
    dist.destroy_process_group()
    # Gloo worker threads can still be alive when the interpreter finalises; under load that aborted one rank
    # after its results were saved (CI: "terminate called without an active exception"; pytorch PR 179291
    # describes it). The results are on disk, so the rank leaves without running finalisers; a rank that fails
    # earlier still raises.
    os._exit(0)


@pytest.mark.parametrize("kind", ["sigmoid", "infonce"])
def test_two_ranks_reproduce_the_global_batch(kind: str, tmp_path: Path) -> None:
    cbct, ios = _tokens(2 * N_CBCT, 0), _tokens(2 * N_IOS, 1)
    zc = cbct.embeddings.clone().requires_grad_(True)
    zi = ios.embeddings.clone().requires_grad_(True)
    criterion = _loss(kind)
    one = criterion(_slice(cbct, slice(None), zc), _slice(ios, slice(None), zi))
    one.total.backward()
    mp.spawn(_rank, args=(kind, str(tmp_path), _free_port()), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    # DDP averages over ranks: the mean of the ranks' losses and gradients is the one-process loss and gradient
    torch.testing.assert_close((ranks[0]["total"] + ranks[1]["total"]) / 2, one.total.detach())
    assert zc.grad is not None
    assert zi.grad is not None
    for r, part in enumerate(ranks):
        torch.testing.assert_close(part["zc"] / 2, zc.grad[r * N_CBCT : (r + 1) * N_CBCT])
        torch.testing.assert_close(part["zi"] / 2, zi.grad[r * N_IOS : (r + 1) * N_IOS])
        for key in ("positives_cbct", "positives_ios", "positives_cross"):
            assert part["parts"][key] == one.parts[key] > 0
    torch.testing.assert_close((ranks[0]["scale"] + ranks[1]["scale"]) / 2, criterion.log_scale["cross"].grad)


@pytest.mark.parametrize("unlabelled", ["negatives", "exclude"])
@pytest.mark.parametrize("kind", ["sigmoid", "infonce"])
def test_blockwise_loss_equals_the_dense_matrices(kind: str, unlabelled: str) -> None:
    from toothmcl_models.losses import info_nce_loss, sigmoid_loss
    from toothmcl_models.tokens import cross_modal_pairs, intra_pairs

    cbct, ios = _tokens(40, 2), _tokens(30, 3)
    criterion = ToothMCLLoss(LossConfig(kind=kind, init_bias=-2.0), TokenConfig(unlabelled=unlabelled))  # type: ignore[arg-type]
    got = criterion(cbct, ios)

    def dense(name: str, za: torch.Tensor, zb: torch.Tensor, pos: torch.Tensor, val: torch.Tensor) -> torch.Tensor:
        if kind == "sigmoid":
            return sigmoid_loss(za, zb, pos, val, criterion.scale(name), criterion.bias[name])
        return info_nce_loss(za, zb, pos, val, criterion.scale(name), symmetric=name == "cross")

    l_c = dense("cbct", cbct.embeddings, cbct.embeddings, *intra_pairs(cbct.labels, cbct.patient, unlabelled))  # type: ignore[arg-type]
    l_i = dense("ios", ios.embeddings, ios.embeddings, *intra_pairs(ios.labels, ios.patient, unlabelled))  # type: ignore[arg-type]
    l_x = dense("cross", cbct.embeddings, ios.embeddings, *cross_modal_pairs(cbct, ios, unlabelled))  # type: ignore[arg-type]
    torch.testing.assert_close(got.total, l_c + l_i + 0.5 * l_x)
    assert got.parts["positives_cross"] == float(cross_modal_pairs(cbct, ios)[0].sum())
