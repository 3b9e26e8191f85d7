#!/usr/bin/python3
"""The worked example of docs/interop.md on the PyTorch side: train a SASRec in SASRec.pytorch's
arrangement and with its training recipe, and evaluate it under its own protocol.

  interop_example.py train --data ml-1m.txt --variant legacy [--maxlen 200] --epochs 5 --out model.pth
  interop_example.py evaluate --data ml-1m.txt --variant legacy [--maxlen 200] --state-dict model.pth

The model class is tests/interop/reference_models.py (written to match SASRec.pytorch's published
classes: same state_dict, same forward). The recipe follows that project's defaults (batch 128, lr 1e-3,
Adam betas (0.9, 0.98), d 50, 2 blocks, 1 head, maxlen 200, dropout 0.2, BCE with one negative per
position, xavier-normal init); its split puts the last item of each user in test, the one before in
validation (users with fewer than 4 events: all in train). Its evaluation: 100 negatives drawn
uniformly WITH replacement among the items the user has not rated (train + validation), HR@10 and NDCG@10
of the test item's rank. With SASRec.pytorch itself installed, its main.py does the same.
"""
import argparse
import os
import sys
import time
from collections import defaultdict

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "interop"))
import reference_models as ref  # noqa: E402


def partition(path):
    users = defaultdict(list)
    n_items = 0
    for line in open(path):
        u, i = map(int, line.split()[:2])
        users[u].append(i)
        n_items = max(n_items, i)
    train, valid, test = {}, {}, {}
    for u, seq in users.items():
        if len(seq) < 4:
            train[u], valid[u], test[u] = seq, [], []
        else:
            train[u], valid[u], test[u] = seq[:-2], [seq[-2]], [seq[-1]]
    return train, valid, test, max(users), n_items


def left_pad(items, L):
    items = items[-L:]
    return [0] * (L - len(items)) + items


def batch_rows(train, uids, n_items, L, rng):
    seqs, poss, negs = [], [], []
    for u in uids:
        h = train[u]
        seen = set(h)
        seqs.append(left_pad(h[:-1], L))
        poss.append(left_pad(h[1:], L))
        neg = []
        for _ in h[1:]:
            t = int(rng.integers(1, n_items + 1))
            while t in seen:
                t = int(rng.integers(1, n_items + 1))
            neg.append(t)
        negs.append(left_pad(neg, L))
    return [torch.tensor(x) for x in (seqs, poss, negs)]


def build(n_items, variant, dropout, maxlen):
    return ref.SASRec(n_items, 50, 2, 1, maxlen, variant, dropout=dropout)


def train_command(a):
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    train, valid, test, n_users, n_items = partition(a.data)
    model = build(n_items, a.variant, 0.2, a.maxlen)
    for name, p in model.named_parameters():  # SASRec.pytorch: xavier-normal where it can
        try:
            torch.nn.init.xavier_normal_(p.data)
        except ValueError:
            pass
    with torch.no_grad():
        model.item_emb.weight[0].zero_()
        model.pos_emb.weight[0].zero_()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.98))
    bce = torch.nn.BCEWithLogitsLoss()
    users = np.array([u for u in train if len(train[u]) > 1])
    start = time.time()
    for epoch in range(1, a.epochs + 1):
        model.train()
        rng.shuffle(users)
        total = 0.0
        for b in range(0, len(users), 128):
            seq, pos, neg = batch_rows(train, users[b:b + 128], n_items, a.maxlen, rng)
            h = model.log2feats(seq)
            pl = (h * model.item_emb(pos)).sum(-1)
            nl = (h * model.item_emb(neg)).sum(-1)
            at = pos != 0
            loss = bce(pl[at], torch.ones_like(pl[at])) + bce(nl[at], torch.zeros_like(nl[at]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        print("epoch %d loss %.4f (%.0f s)" % (epoch, total, time.time() - start), flush=True)
        torch.save(model.state_dict(), a.out)


def evaluate_command(a):
    train, valid, test, n_users, n_items = partition(a.data)
    model = build(n_items, a.variant, 0.0, a.maxlen)
    model.load_state_dict(torch.load(a.state_dict), strict=True)
    model.eval()
    rng = np.random.default_rng(a.seed)
    hits = ndcg = count = 0.0
    with torch.no_grad():
        for u in range(1, n_users + 1):
            if len(train.get(u, [])) < 1 or len(test.get(u, [])) < 1:
                continue
            seq = torch.tensor([left_pad(train[u] + valid[u], a.maxlen)])
            rated = set(train[u]) | {valid[u][0], 0}
            items = [test[u][0]]
            while len(items) < 101:  # with replacement: a negative may repeat
                t = int(rng.integers(1, n_items + 1))
                if t not in rated:
                    items.append(t)
            scores = model.predict(seq, torch.tensor(items))[0]
            rank = int((scores[1:] > scores[0]).sum())
            count += 1
            if rank < 10:
                hits += 1
                ndcg += 1 / np.log2(rank + 2)
    print("SASRec.pytorch protocol (sampled, 100 negatives with replacement), %d users: HR@10 %.4f NDCG@10 %.4f" %
          (count, hits / count, ndcg / count))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("train", "evaluate"):
        p = sub.add_parser(name)
        p.add_argument("--data", required=True)
        p.add_argument("--variant", required=True, choices=("legacy", "norm-first", "post-ln"))
        p.add_argument("--seed", type=int, default=1)
        p.add_argument("--maxlen", type=int, default=200)
        if name == "train":
            p.add_argument("--epochs", type=int, default=5)
            p.add_argument("--out", required=True)
        else:
            p.add_argument("--state-dict", required=True)
    a = parser.parse_args()
    torch.set_num_threads(1)  # 2 cores shared: one thread (OpenMP spin-waits waste the rest)
    (train_command if a.command == "train" else evaluate_command)(a)


if __name__ == "__main__":
    main()
