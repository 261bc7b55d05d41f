"""The first homepage after a user's new interaction, with the real-size cross-encoder reranking
20, with and without the queue worker computing it ahead (issue 17). Run by bench/precompute.sh,
which starts the project cluster with the worker in the database.

Per household (a different sample for each mode): a first visit, then track() of a VIEW
(committed, as the shop's request would), a pause (the shopper reading the page), the timed
homepage, then the same for a PURCHASE. Timed client side (loopback) and server side
(clock_timestamp() around the call). The tracked rows are deleted at the end; the shared
cross-encoder scores are emptied before each mode, so no pair scored by an earlier run is found.
"""
import argparse
import os
import statistics
import time

import psycopg

ap = argparse.ArgumentParser()
ap.add_argument("--db", default="recommender_cj")
ap.add_argument("--users", type=int, default=60)
ap.add_argument("--think", type=float, default=2.0, help="seconds between track() and the homepage")
ap.add_argument("--ce", required=True, help="recommender.cross_encoder_dir")
args = ap.parse_args()

TIMED = """CREATE FUNCTION pg_temp.timed(u text) RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
  PERFORM count(*) FROM recommender.homepage(u, 12);
  RETURN extract(epoch FROM clock_timestamp() - t0) * 1000;
END $$"""


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, int(round(q * (len(xs) - 1)))))]


def run(precompute):
    conn = psycopg.connect(host="127.0.0.1", port=os.environ["PGPORT"], user="postgres",
                           dbname=args.db, autocommit=True)
    cur = conn.cursor()
    cur.execute("SET recommender.as_of = '2018-01-01'")
    cur.execute("SELECT set_config('recommender.cross_encoder_dir', %s, false)", (args.ce,))
    cur.execute("SELECT set_config('recommender.precompute_homepage', %s, false)", ("on" if precompute else "off",))
    cur.execute("SET client_min_messages = warning")
    cur.execute(TIMED)
    # no pair scored by an earlier run (the same households and products give the same queries)
    cur.execute("TRUNCATE recommender.rerank_scores")
    cur.execute("""SELECT user_id, (SELECT product_id FROM recommender.products
                                     ORDER BY md5(user_id || product_id::text || %s) LIMIT 1)
                     FROM (SELECT DISTINCT user_id FROM recommender.interactions) s
                    ORDER BY md5(user_id || 'precompute') LIMIT %s OFFSET %s""",
                ("on" if precompute else "off", args.users, args.users if precompute else 0))
    users = cur.fetchall()
    cur.execute("SELECT recommender.preload_models()")
    cur.execute("SELECT count(*) FROM recommender.rerank('warm up', ARRAY['the model loads here'])")
    ids, ready = [], {"VIEW": 0, "PURCHASE": 0}
    rows = {"first visit (before the interaction), server": []}
    for t in ready:
        rows[f"first after a {t}, server"] = []
        rows[f"first after a {t}, client"] = []
    for u, pid in users:
        cur.execute("SELECT pg_temp.timed(%s)", (u,))
        rows["first visit (before the interaction), server"].append(cur.fetchone()[0])
        for t in ready:
            cur.execute("SELECT recommender.track(%s, %s, %s, occurred_at => '2017-12-31 12:00')", (u, pid, t))
            ids.append(cur.fetchone()[0])
            time.sleep(args.think)
            cur.execute("SELECT NOT EXISTS (SELECT FROM recommender.homepage_queue WHERE user_id = %s)", (u,))
            ready[t] += cur.fetchone()[0]
            t0 = time.perf_counter()
            cur.execute("SELECT pg_temp.timed(%s)", (u,))
            rows[f"first after a {t}, server"].append(cur.fetchone()[0])
            rows[f"first after a {t}, client"].append((time.perf_counter() - t0) * 1000)
    cur.execute("DELETE FROM recommender.interactions WHERE interaction_id = ANY(%s)", (ids,))
    cur.execute("DELETE FROM recommender.homepage_queue")
    conn.close()
    label = "precompute on " if precompute else "precompute off"
    for name, xs in rows.items():
        print(f"{label} | {name:45s} | n {len(xs)} | p50 {statistics.median(xs):7.1f} | "
              f"p95 {pct(xs, 0.95):7.1f} | p99 {pct(xs, 0.99):7.1f} ms")
    if precompute:
        print(f"{label} | queue empty before the call (the worker had taken the user): VIEW {ready['VIEW']}/{len(users)}, "
              f"PURCHASE {ready['PURCHASE']}/{len(users)}; pause {args.think} s")


run(False)
run(True)
