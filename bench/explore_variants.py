"""Ways to rank products new to the user on Complete Journey's validation split, measured before
building them into the extension (issue 14: "measure and choose").

    .run/venv/bin/python bench/explore_variants.py [--port P] [--db recommender_cj]
    (bench/results/explore_variants.txt; a few minutes, numpy only)

The split is tune()'s: purchases before 2017-11-05 train, those from 2017-11-05 to 2017-12-04 are
the validation period; the test period (from 2017-12-04) is never read. Every list is the top 10
of the full catalogue minus the household's training purchases; NDCG@10 over the products new to
the household in the validation period, for every household with one. Each variant is compared
with plain EASE (0/1 rows, the 5,000 most bought products, lambda 1000: build_item_model()'s
defaults), paired over the same households, mean +/- standard error.

1. EASE's lambda and span.
2. EASE's prediction from a weighted history: each purchased product counts by a function of its
   decayed basket frequency f = sum over the baskets that hold it of exp(-age/tau) (the repeat
   source's score) instead of 1.
3. TIFU-KNN's user-neighbourhood term (Hu et al., SIGIR 2020): the mean of the k most similar
   households' normalised decayed-frequency vectors (cosine), alone and fused with EASE.
4. Recent popularity (purchases in the last D days before the period, the pipeline's
   popularity_window_days) added to EASE's per-household normalised scores: (1 - w) EASE + w pop,
   pop divided by its largest value, raw or as ln(1 + n).
5. EASE's training matrix: only the last D days of purchases (its 5,000 products chosen by them),
   or each household's row divided by the square root of its number of products (plain EASE's
   5,000 products); the prediction still from the whole history.
6. EASE's regularisation per product (Steck, NeurIPS 2020, "Autoencoders that don't overfit
   towards the identity"): lambda_i = lambda + c * G_ii, G_ii the product's buyers, which is
   emphasised denoising with dropout p = c / (1 + c) (EDLAE, zero diagonal); and the same
   penalty without the zero-diagonal constraint (DLAE: B = I - P diag(lambda_i)).
7. Other item-to-item models and blends (issue 14 names RP3beta and item-kNN): EASE's weights cut
   to each product's n largest positive ones (build_item_model() keeps the largest |B|); RP3beta
   (Paudel et al., TIIS 2017: W = P_iu^a P_ui^a, each column divided by the product's buyers^b)
   and cosine item-kNN over the same 5,000 products, alone and added to EASE's per-household
   normalised scores, (1 - w) EASE + w it.
8. Popularity within the household's own categories: share_u(c) (the household's training basket
   lines in product category c, divided by all of them) times the product's ln(1 + buyers),
   normalised per household, alone and added to EASE: (1 - w) EASE + w it; and EASE's scores
   multiplied by (1 + w share_u(c)).
9. What the target is: products *new* to the household. New-buyer popularity (households whose
   first purchase of the product fell in the last D days of training), ln(1 + n) over its largest,
   added to EASE's normalised scores; EASE times the product's adoption rate (the share of its
   buyers in the last 90 days who were new to it, smoothed).
10. A next-period model trained for that target: B = (X'X + lambda I)^-1 X'Y over plain EASE's
   5,000 products, X the households' purchases before a cut c, Y their first purchases in the 28
   days from c (c 28 days before the validation period; or 28, 56 and 84, stacked), its
   prediction X B from the whole history, alone and added to EASE: (1 - w) EASE + w it.
11. The item model's sum weighted by recency *rank* (0.25.0): the household's products ordered by
   their latest purchase, newest first, the r-th (from 0) counting a + (1 - a) exp(-r / n) instead
   of 1; with plain EASE's weights and with the stored model of 0.24.0 (EASE blended with the
   adoption model, w 0.2, 100 links per product). The second column is then that model's
   difference, the third the variant's minus that model's.
12. Section 9's new-buyer popularity (households whose first purchase of the product fell in
   the last D days of training, ln(1 + n) over its largest) added to the stored model of 0.24.0
   (section 11's reference), per-household normalised: (1 - w) model + w it; with Recall@10 as
   well (issue 14's bar on new-to-user items is on both), against popularity's.
"""

import argparse
import math

import numpy as np
import psycopg

T_VAL = "2017-11-05"
T_END = "2017-12-04"
K = 10


def load(conn, start, end):
    rows = conn.execute(
        """SELECT user_id, product_id, coalesce(basket_key, interaction_id::text),
                  extract(epoch FROM occurred_at)::float8
             FROM recommender.interactions
            WHERE type = 'PURCHASE' AND occurred_at < %s::timestamptz""",
        (end,),
    ).fetchall()
    t_val = conn.execute("SELECT extract(epoch FROM %s::timestamptz)::float8", (start,)).fetchone()[0]
    users = {u: i for i, u in enumerate(sorted({r[0] for r in rows}))}
    items = {p: i for i, p in enumerate(sorted({r[1] for r in rows}))}
    baskets, test = {}, {}
    for u, p, b, t in rows:
        if t < t_val:
            key = (users[u], items[p], b)
            baskets[key] = max(baskets.get(key, 0.0), t)
        else:
            test.setdefault(users[u], set()).add(items[p])
    return len(users), len(items), baskets, test, t_val, items


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", default="28815")
    ap.add_argument("--db", default="recommender_cj")
    ap.add_argument("--valid", nargs=2, default=(T_VAL, T_END), metavar=("FROM", "TO"),
                    help="the validation period (default tune()'s: %s to %s)" % (T_VAL, T_END))
    ap.add_argument("--only", nargs="+", choices=("lambda", "weights", "neighbours", "popularity", "training", "dropout", "blends", "categories", "adoption", "next-period", "recency", "new-buyers"),
                    help="these sections only")
    a = ap.parse_args()

    def want(section):
        return a.only is None or section in a.only
    with psycopg.connect(f"host=127.0.0.1 port={a.port} user=postgres dbname={a.db}") as conn:
        U, I, baskets, test, t_val, items = load(conn, *a.valid)
        category = dict(conn.execute("SELECT product_id, coalesce(category, '') FROM recommender.products").fetchall())
    print(f"validation period {a.valid[0]} to {a.valid[1]}")
    print(f"households {U}, products {I}, training basket lines {len(baskets)}")
    bought = np.zeros((U, I), dtype=np.float32)
    for u, i, _ in baskets:
        bought[u, i] = 1
    pop = bought.sum(0)

    def decayed(tau):
        x = np.zeros((U, I), dtype=np.float32)
        for (u, i, _), t in baskets.items():
            x[u, i] += math.exp((t - t_val) / (86400 * tau))
        return x

    judged = [u for u in sorted(test) if bought[u].sum() > 0 and test[u] - set(np.nonzero(bought[u])[0])]

    def ndcg(scores):
        out = []
        for u in judged:
            s = scores[u].astype(np.float64).copy()
            s[bought[u] > 0] = -np.inf
            new = test[u] - set(np.nonzero(bought[u])[0])
            top = np.argpartition(-s, K)[:K]
            top = top[np.argsort(-s[top], kind="stable")]
            dcg = sum(1 / math.log2(r + 2) for r, i in enumerate(top) if i in new and np.isfinite(s[i]))
            out.append(dcg / sum(1 / math.log2(r + 2) for r in range(min(K, len(new)))))
        return np.array(out)

    def ease_of(x, n, lam, top=None):
        """EASE over the n columns of x with the largest sums, or over `top`: (columns, B)."""
        if top is None:
            top = np.argsort(-x.sum(0), kind="stable")[:n]
        xs = x[:, top]
        p = np.linalg.inv(xs.T @ xs + lam * np.eye(len(top), dtype=np.float32))
        b = -p / np.diag(p)
        np.fill_diagonal(b, 0)
        return top, b

    def edlae_of(x, top, lam, c, zero_diagonal=True):
        xs = x[:, top]
        g = xs.T @ xs
        reg = lam + c * np.diag(g)
        p = np.linalg.inv(g + np.diag(reg).astype(np.float32))
        if zero_diagonal:
            b = -p / np.diag(p)
        else:
            b = -p * reg[None, :]
        np.fill_diagonal(b, 0)
        return top, b

    def ease(n, lam):
        return ease_of(bought, n, lam)

    def scored(top, b, weights):
        s = np.full((U, I), -1e9, dtype=np.float32)
        s[:, top] = weights[:, top] @ b
        return s

    top, b = ease(5000, 1000.0)
    plain = scored(top, b, bought)
    base = ndcg(plain)
    print(f"households judged {len(judged)}")
    print(f"plain EASE (5000 products, lambda 1000): NDCG@10 {base.mean():.4f} +/- {base.std() / math.sqrt(len(base)):.4f}")
    print(f"popularity: NDCG@10 {ndcg(np.tile(pop, (U, 1))).mean():.4f}")

    def row(label, v):
        d = v - base
        print(f"{label:<48} {v.mean():.4f}   {d.mean():+.4f} +/- {d.std() / math.sqrt(len(d)):.4f}", flush=True)

    print(f"\n{'variant':<48} NDCG@10  minus plain EASE")
    print("-- 1. lambda and span")
    grid = ((5000, 250.0), (5000, 500.0), (5000, 2000.0), (5000, 4000.0), (10000, 500.0), (10000, 1000.0))
    for n, lam in grid if want("lambda") else ():
        t, bb = ease(n, lam)
        row(f"EASE {n} products, lambda {lam:g}", ndcg(scored(t, bb, bought)))
    print("-- 2. weighted history, f = decayed basket frequency")
    counts = np.zeros((U, I), dtype=np.float32)
    for u, i, _ in baskets:
        counts[u, i] += 1
    if want("weights"):
        row("ln(1 + baskets)", ndcg(scored(top, b, np.log1p(counts))))
    for tau in (30, 90, 180, 365) if want("weights") else ():
        f = decayed(tau)
        for label, w in (
            ("f", f),
            ("sqrt(f)", np.sqrt(f)),
            ("f / (1 + f)", f / (1 + f)),
            ("ln(1 + f)", np.log1p(f)),
            ("1 - exp(-f)", -np.expm1(-f)),
        ):
            row(f"tau {tau} days: {label}", ndcg(scored(top, b, w)))
    print("-- 3. TIFU-KNN user neighbourhood")

    def unit(s):
        s = np.where(bought > 0, 0, np.clip(s, 0, None))
        mx = s.max(1, keepdims=True)
        return s / np.where(mx > 0, mx, 1)

    plain_unit = unit(plain) if want("neighbours") else None
    for tau in (90, 180) if want("neighbours") else ():
        f = decayed(tau)
        f /= np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-9)
        sim = f @ f.T
        np.fill_diagonal(sim, -1)
        for k in (50, 300):
            nb = np.argpartition(-sim, k, axis=1)[:, :k]
            term = np.stack([f[nb[u]].mean(0) for u in range(U)])
            row(f"tau {tau}, {k} neighbours: alone", ndcg(term))
            term = unit(term)
            for w in (0.2, 0.35, 0.5):
                row(f"tau {tau}, {k} neighbours: {1 - w:g} EASE + {w:g} it", ndcg((1 - w) * plain_unit + w * term))
            row(f"tau {tau}, {k} neighbours: larger of the two", ndcg(np.maximum(plain_unit, term)))

    print("-- 4. recent popularity added")
    if plain_unit is None and want("popularity"):
        plain_unit = unit(plain)
    for days in (14, 30, 90) if want("popularity") else ():
        n = np.zeros(I, dtype=np.float32)
        for (u, i, _), t in baskets.items():
            if t >= t_val - 86400 * days:
                n[i] += 1
        for label, p in (("n", n / n.max()), ("ln(1 + n)", np.log1p(n) / np.log1p(n).max())):
            for w in (0.05, 0.1, 0.2, 0.3):
                row(f"{days} days, {label}: {1 - w:g} EASE + {w:g} pop", ndcg((1 - w) * plain_unit + w * p[None, :]))

    print("-- 5. EASE's training matrix")
    for days in (90, 180, 270) if want("training") else ():
        x = np.zeros((U, I), dtype=np.float32)
        kept = 0
        for (u, i, _), t in baskets.items():
            if t >= t_val - 86400 * days:
                x[u, i] = 1
                kept += 1
        print(f"   last {days} days: {kept / len(baskets):.0%} of the training basket lines; the 5,000 products chosen by them")
        for lam in (250.0, 500.0, 1000.0):
            cols, bb = ease_of(x, 5000, lam)
            row(f"last {days} days, lambda {lam:g}", ndcg(scored(cols, bb, bought)))
    if want("training"):
        x = bought / np.sqrt(np.maximum(bought.sum(1, keepdims=True), 1))
        for lam in (10.0, 30.0, 100.0):  # plain EASE's 5,000 products
            cols, bb = ease_of(x, 5000, lam, top)
            row(f"rows / sqrt(products), lambda {lam:g}", ndcg(scored(cols, bb, bought)))

    print("-- 6. regularisation per product (EDLAE / DLAE)")
    for c in (0.1, 0.33, 1.0, 3.0) if want("dropout") else ():
        for lam in (250.0, 1000.0):
            cols, bb = edlae_of(bought, top, lam, c)
            row(f"EDLAE p {c / (1 + c):.2f}, lambda {lam:g}", ndcg(scored(cols, bb, bought)))
    for c in (0.33, 1.0, 3.0) if want("dropout") else ():
        cols, bb = edlae_of(bought, top, 500.0, c, zero_diagonal=False)
        row(f"DLAE p {c / (1 + c):.2f}, lambda 500", ndcg(scored(cols, bb, bought)))

    print("-- 7. other item-to-item models and blends")
    if want("blends"):
        if plain_unit is None:
            plain_unit = unit(plain)
        for n in (50, 100, 300):
            bb = b.copy()
            cut = np.argpartition(-bb, n, axis=1)[:, n:]
            np.put_along_axis(bb, cut, 0, axis=1)
            row(f"EASE, {n} largest positive weights each", ndcg(scored(top, bb, bought)))
        xs = bought[:, top]
        deg_u = np.maximum(xs.sum(1, keepdims=True), 1)
        deg_i = np.maximum(xs.sum(0), 1)
        models = {}
        for alpha in (0.5, 1.0):
            w = (xs / deg_i[None, :]).T ** alpha @ (xs / deg_u) ** alpha
            for beta in (0.3, 0.5, 0.7):
                ww = w / deg_i[None, :] ** beta
                np.fill_diagonal(ww, 0)
                models[f"RP3beta a {alpha:g} b {beta:g}"] = ww
        g = xs.T @ xs
        norm = np.sqrt(np.diag(g))
        cos = g / np.maximum(norm[:, None] * norm[None, :], 1e-9)
        np.fill_diagonal(cos, 0)
        models["cosine item-kNN"] = cos
        for label, ww in models.items():
            alone = scored(top, ww, bought)
            row(f"{label}: alone", ndcg(alone))
            it = unit(alone)
            for wt in (0.1, 0.2, 0.35):
                row(f"{label}: {1 - wt:g} EASE + {wt:g} it", ndcg((1 - wt) * plain_unit + wt * it))


    print("-- 8. popularity within the household's categories")
    if want("categories"):
        if plain_unit is None:
            plain_unit = unit(plain)
        names = sorted({category.get(p, "") for p in items})
        cat = np.zeros(I, dtype=np.int64)
        for p, i in items.items():
            cat[i] = names.index(category.get(p, ""))
        share = np.zeros((U, len(names)), dtype=np.float32)
        for u, i, _ in baskets:
            share[u, cat[i]] += 1
        share /= np.maximum(share.sum(1, keepdims=True), 1)
        own = share[:, cat]
        catpop = unit(own * np.log1p(pop)[None, :])
        row("category popularity alone", ndcg(catpop))
        for w in (0.05, 0.1, 0.2, 0.3):
            row(f"{1 - w:g} EASE + {w:g} category popularity", ndcg((1 - w) * plain_unit + w * catpop))
        for w in (0.5, 1.0, 2.0):
            row(f"EASE x (1 + {w:g} share of the category)", ndcg(plain_unit * (1 + w * own)))

    day = 86400.0

    def scale(s):
        """The mean over households of their largest score of a product they did not buy."""
        return float(np.where(bought > 0, -np.inf, s).max(1).clip(0, None).mean())

    def keep_largest(m, n):
        """Each row's n entries of largest absolute value, the rest zero."""
        m = m.copy()
        np.put_along_axis(m, np.argpartition(-np.abs(m), n, axis=1)[:, n:], 0, axis=1)
        return m

    def next_period(first, cuts):
        """Section 10's model over plain EASE's products, as a function of lambda: B = (X'X +
        lambda I)^-1 X'Y, X the purchases before each cut (days before the period), Y the first
        ones in the 28 days from it."""
        xtx = np.zeros((len(top), len(top)), dtype=np.float64)
        xty = np.zeros((len(top), len(top)), dtype=np.float64)
        for c in cuts:
            c0 = t_val - day * c
            x = (first[:, top] < c0).astype(np.float32)
            y = ((first[:, top] >= c0) & (first[:, top] < c0 + day * 28)).astype(np.float32)
            xtx += x.T @ x
            xty += x.T @ y
        return lambda lam: np.linalg.solve(xtx + lam * np.eye(len(top)), xty).astype(np.float32)

    def one_model(bb, wt):
        """EASE and bb as build_item_model() stores them: each divided by the mean of its
        products' largest weights, blended, each product's 100 largest |weights| kept."""
        return keep_largest((1 - wt) * b / b.max(1).mean() + wt * bb / bb.max(1).mean(), 100)

    def first_purchases():
        """When each household first bought each product (inf: never, in training)."""
        first = np.full((U, I), np.inf)
        for (u, i, _), t in baskets.items():
            first[u, i] = min(first[u, i], t)
        return first

    print("-- 9. products new to the household: adoption")
    if want("adoption"):
        if plain_unit is None:
            plain_unit = unit(plain)
        first = first_purchases()
        for days in (7, 14, 28, 56):
            since = t_val - day * days
            new = (np.isfinite(first) & (first >= since)).sum(0).astype(np.float32)
            p = np.log1p(new) / np.log1p(new).max()
            row(f"new buyers, last {days} days: alone", ndcg(np.tile(p, (U, 1))))
            for w in (0.1, 0.2, 0.3, 0.4, 0.5):
                row(f"new buyers, last {days} days: {1 - w:g} EASE + {w:g} it", ndcg((1 - w) * plain_unit + w * p[None, :]))
        buyers90 = np.zeros((U, I), dtype=bool)
        for (u, i, _), t in baskets.items():
            if t >= t_val - day * 90:
                buyers90[u, i] = True
        rate = ((np.isfinite(first) & (first >= t_val - day * 90)).sum(0) + 1) / (buyers90.sum(0) + 2)
        for w in (0.5, 1.0, 2.0):
            row(f"EASE x adoption rate (90 days) ^ {w:g}", ndcg(plain_unit * (rate ** w)[None, :]))
    print("-- 10. a next-period model: history -> the products first bought in the next 28 days")
    if want("next-period"):
        if plain_unit is None:
            plain_unit = unit(plain)
        first = first_purchases()
        sparse_ease = scored(top, keep_largest(b, 100), bought)
        row("EASE, 100 per product (as stored)", ndcg(sparse_ease))
        sparse_ease = unit(sparse_ease)
        for cuts in ((28,), (28, 56, 84)):
            solve = next_period(first, cuts)
            for lam in (1000.0, 10000.0, 30000.0, 100000.0):
                bb = solve(lam)
                alone = scored(top, bb, bought)
                label = f"next-period, cuts {'/'.join(map(str, cuts))}, lambda {lam:g}"
                row(f"{label}: alone", ndcg(alone))
                it = unit(alone)
                for wt in (0.2, 0.35, 0.5, 0.65):
                    row(f"{label}: {1 - wt:g} EASE + {wt:g} it", ndcg((1 - wt) * plain_unit + wt * it))
                if len(cuts) == 1 and lam in (10000.0, 30000.0):
                    # as build_item_model() stores a model: each product's 100 largest |weights|
                    it = unit(scored(top, keep_largest(bb, 100), bought))
                    for wt in (0.2, 0.35):
                        row(f"{label}, both 100 per product: {1 - wt:g} EASE + {wt:g} it",
                            ndcg((1 - wt) * sparse_ease + wt * it))
                    # one stored model: the two weight matrices added, each divided by the mean
                    # over households of its largest score (a global scale, so one B serves)
                    ce, cn = scale(plain), scale(alone)
                    for wt in (0.2, 0.35, 0.5):
                        one = keep_largest((1 - wt) * b / ce + wt * bb / cn, 100)
                        row(f"{label}, one model of 100 per product: {1 - wt:g} EASE + {wt:g} it",
                            ndcg(scored(top, one, bought)))
                    # the same with a scale read off the weights alone: the mean of each
                    # product's largest weight (no pass over the households)
                    for wt in (0.1, 0.15, 0.2, 0.25, 0.3):
                        row(f"{label}, one model (row scale): {1 - wt:g} EASE + {wt:g} it",
                            ndcg(scored(top, one_model(bb, wt), bought)))

    print("-- 11. recency rank: the r-th newest product counts a + (1 - a) exp(-r / n)")
    if want("recency"):
        latest = np.full((U, I), -np.inf)
        for (u, i, _), t in baskets.items():
            latest[u, i] = max(latest[u, i], t)
        # rank 0 = the newest product of the household (ties by product index, as the pipeline)
        order = np.argsort(-latest, axis=1, kind="stable")
        rank = np.empty((U, I), dtype=np.float32)
        np.put_along_axis(rank, order, np.arange(I, dtype=np.float32)[None, :].repeat(U, 0), axis=1)
        shipped = one_model(next_period(first_purchases(), (28,))(10000.0), 0.2)
        ref = ndcg(scored(top, shipped, bought))
        row("the stored model of 0.24.0, unweighted", ref)
        for n in (5, 10, 20, 50, 100):
            for a in (0.0, 0.1, 0.3):
                w = bought * (a + (1 - a) * np.exp(-rank / n))
                v = ndcg(scored(top, shipped, w))
                d = v - ref
                row(f"0.24.0 model, n {n}, a {a:g}  [- 0.24.0: {d.mean():+.4f} +/- {d.std() / math.sqrt(len(d)):.4f}]", v)

    print("-- 12. new-buyer popularity added to the stored model of 0.24.0 (NDCG@10 and Recall@10)")
    if want("new-buyers"):
        def recall(scores):
            out = []
            for u in judged:
                s = scores[u].astype(np.float64).copy()
                s[bought[u] > 0] = -np.inf
                new = test[u] - set(np.nonzero(bought[u])[0])
                top10 = np.argpartition(-s, K)[:K]
                out.append(sum(1 for i in top10 if i in new and np.isfinite(s[i])) / len(new))
            return np.array(out)

        first = first_purchases()
        shipped = scored(top, one_model(next_period(first, (28,))(10000.0), 0.2), bought)
        ref, ref_r = ndcg(shipped), recall(shipped)
        # evaluate()'s popularity: purchase lines in the 30 days (popularity_window_days) before
        pop30 = np.zeros(I, dtype=np.float32)
        for (u, i, _), t in baskets.items():
            if t >= t_val - day * 30:
                pop30[i] += 1
        pop_r = recall(np.tile(pop30 + pop * 1e-6, (U, 1)))
        print(f"popularity (30 days): Recall@10 {pop_r.mean():.4f}; the stored model: NDCG@10 "
              f"{ref.mean():.4f}, Recall@10 {ref_r.mean():.4f} ({ref_r.mean() / pop_r.mean():.2f}x popularity)")
        shipped_unit = unit(shipped)
        for days in (7, 14, 28):
            since = t_val - day * days
            nb = (np.isfinite(first) & (first >= since)).sum(0).astype(np.float32)
            p = np.log1p(nb) / np.log1p(nb).max()
            for w in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7):
                mix = (1 - w) * shipped_unit + w * p[None, :]
                v, r = ndcg(mix), recall(mix)
                d, dr = v - ref, r - ref_r
                print(f"new buyers {days:>2} days, w {w:g}: NDCG@10 {v.mean():.4f} ({d.mean():+.4f} +/- "
                      f"{d.std() / math.sqrt(len(d)):.4f}), Recall@10 {r.mean():.4f} ({dr.mean():+.4f} +/- "
                      f"{dr.std() / math.sqrt(len(dr)):.4f}; {r.mean() / pop_r.mean():.2f}x popularity)", flush=True)


if __name__ == "__main__":
    main()
