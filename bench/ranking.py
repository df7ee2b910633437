"""Benchmark: full-ranking evaluation of a dot-product model at PixelRec50K scale.

Random user/item factors (dim 64), a sparse random "seen" matrix (~18 items per user), every user's
target ranked against all items through :func:`pixrec.evaluation.protocols.rank_full`. Prints
users/s, total seconds and peak RSS (resource.getrusage). Nothing users × items is held in memory.

    python bench/ranking.py                      # 50,000 users x 82,865 items, top-10 lists on
    python bench/ranking.py --users 5000 --batch-users 512 --list-k 0
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np


class DotProduct:
    """Recommender: score = user factors · item factors, one matmul per block.

    ``backend="numpy"`` (OpenBLAS sgemm) measured ~2x faster than torch's CPU matmul for this
    (B, 64) @ (64, 82,865) shape on 2 cores; ``torch`` is kept to compare.
    """

    name = "dot"

    def __init__(self, user_f: np.ndarray, item_f: np.ndarray, backend: str = "numpy") -> None:
        self.u = user_f  # (U, d)
        self.v = item_f  # (I, d)
        self.n_items = item_f.shape[0]
        self.backend = backend

    def score(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.einsum("bd,bcd->bc", self.u[users], self.v[items])  # (B, C)

    def score_all(self, users: np.ndarray) -> np.ndarray:
        if self.backend == "torch":
            import torch

            return (torch.from_numpy(self.u[users]) @ torch.from_numpy(self.v).T).numpy()
        return self.u[users] @ self.v.T  # (B, I)


def main() -> None:
    import scipy.sparse as sp
    import torch

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--users", type=int, default=50_000)
    ap.add_argument("--items", type=int, default=82_865)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--seen", type=int, default=18, help="seen items per user (masked)")
    ap.add_argument("--batch-users", type=int, nargs="+", default=[1024])
    ap.add_argument("--list-k", type=int, default=10, help="top-k lists for coverage/novelty; 0 = off")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--backend", choices=["numpy", "torch"], default="numpy")
    args = ap.parse_args()

    from pixrec.evaluation.protocols import rank_full

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    user_f = rng.standard_normal((args.users, args.dim), dtype=np.float32)
    item_f = rng.standard_normal((args.items, args.dim), dtype=np.float32)
    rows = np.repeat(np.arange(args.users), args.seen)
    cols = rng.integers(0, args.items, size=rows.size)
    seen = sp.csr_matrix((np.ones(rows.size, np.float32), (rows, cols)), shape=(args.users, args.items))
    targets = rng.integers(0, args.items, size=args.users)
    rec = DotProduct(user_f, item_f, args.backend)
    users = np.arange(args.users)

    print(f"{args.users:,} users x {args.items:,} items, dim {args.dim}, "
          f"{seen.nnz:,} masked, list_k {args.list_k}, threads {torch.get_num_threads()}, "
          f"matmul {args.backend}")
    for bu in args.batch_users:
        t0 = time.perf_counter()
        out = rank_full(rec, users, targets, seen, batch_users=bu, list_k=args.list_k)
        dt = time.perf_counter() - t0
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux -> GiB
        print(f"batch_users {bu:5d}: {dt:7.2f} s  {args.users / dt:9,.0f} users/s  "
              f"peak RSS {rss:.2f} GiB  (median rank {int(np.median(out.ranks))})")


if __name__ == "__main__":
    main()
