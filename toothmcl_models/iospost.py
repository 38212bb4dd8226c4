"""Post-processing of per-vertex IOS class probabilities on the scan's mesh: what anatomy guarantees.

Three steps, each a known property of a jaw scan, applied by :func:`postprocess_jaw`:

1. **Smoothing on the mesh** (:func:`smooth_on_mesh`): class probabilities are averaged over each vertex's
   1-ring, a few times (a graph low-pass, the cheap end of the field's graph-cut / CRF refinement). Labels are
   piecewise constant on the surface; isolated vertices that disagree with all their neighbours are noise.
2. **One connected piece per tooth** (:func:`keep_largest_pieces`): a tooth is one connected patch of the
   surface. For every tooth class only its largest connected piece (over mesh edges) keeps the label; the
   other pieces take the best other class of their summed probabilities. A tooth label scattered over two
   places puts the tooth's centroid between them, which the 3DTeethSeg22 metrics (TLA, TIR) count as a miss.
3. **Arch order** (:func:`arch_order`): along the dental arch the teeth follow FDI order (x8 … x1 | y1 … y8),
   with gaps where teeth are missing. The tooth pieces are ordered by their angle about the arch's centre in
   the jaw's canonical frame (``stream.jaws.canonical_from_scan``: incisors towards +y, in both jaws the
   ``perjaw17`` classes 1–8 on the −x side) and get the strictly increasing sequence of arch slots that
   maximises the summed log-probability of their vertices (dynamic programming, O(pieces × 16²)). Teeth that
   touch (closest vertices < ``CONTACT_MM``) are neighbours in the arch, so a slot skipped between them (or
   none skipped across a wider gap, where a tooth is missing) costs ``GAP_PENALTY``: a stretch of touching teeth
   is numbered as one block, by the evidence of all its teeth, instead of shifting by one part-way. It turns a
   duplicated, out-of-order or part-way shifted number into the most probable consistent one; it does not split
   merged teeth, assumes no supernumerary teeth (16 slots per jaw), and a gap closed after an extraction reads
   as contact.

Classes are ``perjaw17`` indices (0 gingiva, 1–8 quadrant 1/3 teeth 1–8, 9–16 quadrant 2/4 teeth 1–8).
"""

from __future__ import annotations

import itertools

import numpy as np
from numpy.typing import NDArray
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

ARCH_SLOTS: tuple[int, ...] = (8, 7, 6, 5, 4, 3, 2, 1, 9, 10, 11, 12, 13, 14, 15, 16)
"""``perjaw17`` tooth classes in arch order, from the −x end (x8) through the midline to the +x end (y8)."""
CONTACT_MM = 4.0
"""Neighbouring teeth touch: measured on synthetic jaws, adjacent teeth are ≤ 1.8 mm apart (closest vertices),
teeth with a missing tooth between them ≥ 6.7 mm."""
GAP_PENALTY = 2.0
"""Nats per vertex (of the smaller piece) that numbering against the contacts costs: a number that skips a slot
between touching teeth (or none across a gap) must be e² ≈ 7 times likelier per vertex."""


def mesh_adjacency(faces: NDArray[np.integer], n: int) -> sparse.csr_matrix:
    """(n, n) symmetric 0/1 CSR adjacency of the mesh's edges; faces: (m, 3) int vertex indices."""
    f = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    rows = np.concatenate([f[:, 0], f[:, 1], f[:, 2], f[:, 1], f[:, 2], f[:, 0]])
    cols = np.concatenate([f[:, 1], f[:, 2], f[:, 0], f[:, 0], f[:, 1], f[:, 2]])
    adj = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n, n))
    adj.data[:] = 1.0  # duplicate edges (shared by two faces) summed to 2
    return adj


def smooth_on_mesh(probs: NDArray[np.floating], adjacency: sparse.csr_matrix, iterations: int) -> NDArray[np.float64]:
    """(n, K) probabilities averaged ``iterations`` times over each vertex and its 1-ring (rows sum to 1)."""
    walk = adjacency + sparse.identity(adjacency.shape[0], format="csr", dtype=np.float32)
    walk = sparse.diags(1.0 / np.asarray(walk.sum(1)).ravel()) @ walk
    out = np.asarray(probs, dtype=np.float64)
    for _ in range(iterations):
        out = walk @ out
    return out


def keep_largest_pieces(
    classes: NDArray[np.integer], probs: NDArray[np.floating], adjacency: sparse.csr_matrix
) -> NDArray[np.int64]:
    """(n,) classes where each tooth class (> 0) keeps only its largest connected piece; every smaller piece
    takes the class of highest summed probability among the others (gingiva included). probs: (n, K)."""
    out = np.asarray(classes, dtype=np.int64).copy()
    p = np.asarray(probs, dtype=np.float64)
    for c in np.unique(out):
        if c == 0:
            continue
        members = np.flatnonzero(out == c)
        sub = adjacency[members][:, members]
        count, piece = connected_components(sub, directed=False)
        if count < 2:
            continue
        largest = np.bincount(piece).argmax()
        for k in range(count):
            if k == largest:
                continue
            idx = members[piece == k]
            score = p[idx].sum(0)
            score[c] = -np.inf
            out[idx] = int(score.argmax())
    return out


def _piece_gaps(xyz: NDArray[np.float64], pieces: list[NDArray[np.int64]]) -> NDArray[np.float64]:
    """(len(pieces) − 1,) smallest vertex distance (mm) between each piece and the next."""
    return np.array([cKDTree(xyz[a]).query(xyz[b], k=1)[0].min() for a, b in itertools.pairwise(pieces)])


def arch_order(
    classes: NDArray[np.integer],
    probs: NDArray[np.floating],
    xyz_canonical: NDArray[np.floating],
    *,
    contact_mm: float = CONTACT_MM,
    gap_penalty: float = GAP_PENALTY,
) -> NDArray[np.int64]:
    """(n,) classes whose tooth pieces are renumbered in arch order (module doc, step 3).

    classes: (n,) ``perjaw17``; probs: (n, 17); xyz_canonical: (n, 3) mm in the jaw's canonical frame.
    Consecutive pieces closer than ``contact_mm`` are neighbours in the arch (no slot between them), farther
    ones have a missing tooth between them; numbering against that costs ``gap_penalty`` nats per vertex of the
    smaller piece (module doc).
    """
    out = np.asarray(classes, dtype=np.int64).copy()
    teeth = [int(c) for c in np.unique(out) if c > 0]
    if len(teeth) < 2 or len(teeth) > len(ARCH_SLOTS):
        return out
    xyz = np.asarray(xyz_canonical, dtype=np.float64)
    centre = xyz.mean(0)
    members = [np.flatnonzero(out == c) for c in teeth]
    angles = [float(np.arctan2(*(xyz[m, :2].mean(0) - centre[:2]))) for m in members]  # atan2(x, y): 0 at +y
    pieces = [members[i] for i in np.argsort(angles)]
    logp = np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-6, None))
    slots = np.asarray(ARCH_SLOTS)
    score = np.stack([logp[m][:, slots].sum(0) for m in pieces])  # (pieces, 16)
    contact = _piece_gaps(xyz, pieces) < contact_mm
    n_pieces, n_slots = score.shape
    skipped = np.arange(n_slots)[None, :] - np.arange(n_slots)[:, None] - 1  # [s_prev, s]: slots between
    best = np.full((n_pieces, n_slots), -np.inf)
    back = np.zeros((n_pieces, n_slots), dtype=np.int64)
    best[0] = score[0]
    for i in range(1, n_pieces):
        cost = gap_penalty * min(len(pieces[i - 1]), len(pieces[i]))
        wrong = (skipped > 0) if contact[i - 1] else (skipped == 0)
        total = best[i - 1][:, None] - cost * wrong  # (s_prev, s)
        total[skipped < 0] = -np.inf  # strictly increasing slots
        back[i] = total.argmax(0)
        best[i] = total.max(0) + score[i]
    slot = int(np.argmax(best[-1]))
    for i in range(n_pieces - 1, -1, -1):
        out[pieces[i]] = int(slots[slot])
        slot = int(back[i, slot])
    return out


def postprocess_jaw(
    probs: NDArray[np.floating],
    faces: NDArray[np.integer],
    xyz_canonical: NDArray[np.floating],
    *,
    smooth_iterations: int = 2,
) -> NDArray[np.int64]:
    """(n,) ``perjaw17`` classes of one jaw scan from its (n, 17) vertex probabilities: smoothing on the mesh,
    one piece per tooth, arch order (module doc). faces: (m, 3) the scan's triangles; xyz_canonical: (n, 3) mm."""
    adjacency = mesh_adjacency(faces, len(probs))
    smooth = smooth_on_mesh(probs, adjacency, smooth_iterations)
    classes = keep_largest_pieces(smooth.argmax(1), smooth, adjacency)
    return arch_order(classes, smooth, xyz_canonical)
