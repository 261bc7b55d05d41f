"""A returning household's first homepage in a fresh backend, with the real-size cross-encoder
reranking 20 (issue 17): with no pair of its page scored anywhere (after a new model, or once
the shared scores have expired), and after `recommender.queue_homepages()` had the queue worker
compute it ahead. Run by bench/warm_start.sh, which starts the project cluster with the worker in
the database and sets the clock and the cross-encoder as the database's settings.

Each call is timed from connect to result, client side (psycopg, loopback), one new connection
per call, as an application's first request on a new pooled connection.
"""
import argparse
import os
import statistics
import time

import psycopg

ap = argparse.ArgumentParser()
ap.add_argument("--db", default="recommender_cj")
ap.add_argument("--users", type=int, default=40)
ap.add_argument("--active", default="30 days", help="queue_homepages(active_within)")
ap.add_argument("--budget-ms", type=int, default=100, help="recommender.rerank_budget of the budget mode")
ap.add_argument("--modes", default="cold,warm,budget", help="which modes to time (comma-separated)")
args = ap.parse_args()
DSN = dict(host="127.0.0.1", port=os.environ["PGPORT"], user="postgres", dbname=args.db)


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(q * (len(xs) - 1)))))]


def admin():
    return psycopg.connect(**DSN, autocommit=True)


def first_calls(users, options="", rerankers=None):
    """Connect-to-result times; `rerankers` (a list) collects each call's reranker."""
    ms = []
    for u in users:
        t0 = time.perf_counter()
        with psycopg.connect(**DSN, autocommit=True, options=options) as c:
            r = c.execute("SELECT string_agg(DISTINCT reranker, ',') FROM recommender.homepage(%s, 12)", (u,)).fetchone()[0]
        ms.append((time.perf_counter() - t0) * 1000)
        if rerankers is not None:
            rerankers.append(r)
    return ms


def drain(c):
    """Waits until the queue is empty and the worker between transactions, twice in a row (the
    worker takes a user off the queue before it computes the page); returns the seconds."""
    t0 = time.perf_counter()
    idle = 0
    while idle < 2:
        time.sleep(0.5)
        done = c.execute("""SELECT NOT EXISTS (SELECT FROM recommender.homepage_queue)
                              AND NOT EXISTS (SELECT FROM pg_stat_activity
                                               WHERE backend_type = 'recommender queue worker'
                                                 AND datname = current_database() AND xact_start IS NOT NULL)""").fetchone()[0]
        idle = idle + 1 if done else 0
    return time.perf_counter() - t0


def show(label, ms):
    print(f"{label:<58} | {len(ms):>3} | {statistics.median(ms):7.1f} | {pct(ms, 0.95):7.1f} | {max(ms):7.1f}")


with admin() as c:
    c.execute("SET client_min_messages = warning")
    # households active in the window, the sample from them (each sample measured once per mode)
    active = [r[0] for r in c.execute(
        """SELECT user_id FROM recommender.interactions
            WHERE occurred_at <= recommender.clock() AND occurred_at > recommender.clock() - %s::interval
            GROUP BY user_id ORDER BY md5(user_id || 'warm')""", (args.active,))]
    cold, warm = active[:args.users], active[args.users:2 * args.users]
    budgeted = active[2 * args.users:3 * args.users]
    # every household's stored profile current, so every mode times the cross-encoder, not a rebuild
    c.execute("SELECT count(*) FROM unnest(%s::text[]) u, LATERAL recommender.homepage(u, 12) h",
              (cold + warm + budgeted,))
    c.execute("TRUNCATE recommender.rerank_scores")   # no pair scored anywhere: a new model
print(f"# {len(active)} households active in the {args.active} before the clock; {args.users} timed per mode")
print(f"{'homepage(user, 12), fresh backend, connect to result (ms)':<58} | {'n':>3} | {'p50':>7} | {'p95':>7} | {'max':>7}")
modes = args.modes.split(",")


def cold_mode():
    show("no pair scored anywhere (a new model, expired scores)", first_calls(cold))


def warm_mode():
    with admin() as c:
        c.execute("SET client_min_messages = warning")
        c.execute("TRUNCATE recommender.rerank_scores")
        t0 = time.perf_counter()
        queued = c.execute("SELECT recommender.queue_homepages(%s::interval)", (args.active,)).fetchone()[0]
        drain(c)
        drained = time.perf_counter() - t0
        pairs = c.execute("SELECT count(*) FROM recommender.rerank_scores").fetchone()[0]
    show("after queue_homepages() and the worker's drain", first_calls(warm))
    print(f"# queue_homepages('{args.active}') queued {queued} households; one queue worker computed them in "
          f"{drained:.0f} s ({queued / drained:.1f} households/s, {pairs} pairs stored)")


def budget_mode():
    """recommender.rerank_budget (0.27.0's library), no pair scored anywhere: a fresh backend
    leaves the cross-encoder to the worker, answers without stage 3 and queues the household; the
    household's next call, once the worker has computed its page, finds the pairs scored."""
    opts = f"-c recommender.rerank_budget={args.budget_ms}"
    first, second, ready, ms = [], [], [], []
    with admin() as c:
        c.execute("TRUNCATE recommender.rerank_scores")
        # one household at a time, the worker otherwise idle (a live store's usual case): the first
        # call, then how long until the worker has computed the page it queued (polled every 20 ms)
        for u in budgeted:
            ms += first_calls([u], opts, first)
            t0 = time.perf_counter()
            while c.execute("""SELECT EXISTS (SELECT FROM recommender.homepage_queue WHERE user_id = %s)
                                   OR EXISTS (SELECT FROM pg_stat_activity
                                               WHERE backend_type = 'recommender queue worker'
                                                 AND datname = current_database() AND xact_start IS NOT NULL)""",
                            (u,)).fetchone()[0]:
                time.sleep(0.02)
            ready.append((time.perf_counter() - t0) * 1000)
    show(f"rerank_budget {args.budget_ms} ms, no pair scored: first call", ms)
    show(f"rerank_budget {args.budget_ms} ms: the next call, after the worker", first_calls(budgeted, opts, second))
    count = lambda xs: {r: xs.count(r) for r in sorted(set(xs), key=str)}
    print(f"# rerankers of the first calls: {count(first)}; of the next calls: {count(second)}")
    print(f"# from the end of the first call until the worker had computed the page (one household at a time): "
          f"p50 {statistics.median(ready):.0f} ms, p95 {pct(ready, 0.95):.0f} ms, max {max(ready):.0f} ms")


for name, mode in (("cold", cold_mode), ("warm", warm_mode), ("budget", budget_mode)):
    if name in modes:
        mode()
