# The two commands (see README): `make demo` and `make test`. Both run as root on a fresh
# Debian 12 machine, install what is missing, and are quick the second time.
.PHONY: demo test setup install package start stop psql models bench bench-embed bench-queue bench-bulk bench-analytics bench-majors evaluate soak clean

demo:            ## set up everything, load the electronics store, print similar products (PG=16 or 18: that major)
	bash scripts/demo.sh

test:            ## lints and every test layer, on PostgreSQL 15, 16 and 18 (PG=NN: that major only)
	bash scripts/test.sh

setup:           ## Debian packages, cargo-pgrx, pgvector, ONNX Runtime, model files
	bash scripts/setup.sh

models:          ## (re)materialise the model files and ONNX Runtime
	bash models/materialize.sh

install:         ## build and install the extension, ONNX Runtime and the model files (PG=16, or PG_CONFIG=/path/to/pg_config)
	bash scripts/setup.sh && bash scripts/install-extension.sh

package:         ## dist/postgresql-NN-recommender_<version>-1_amd64.deb for PostgreSQL 15 (PG=16, 18: that major)
	bash scripts/package.sh

start:           ## start the project's cluster (127.0.0.1:28815; PG=16: 28916, PG=18: 28918)
	bash scripts/cluster.sh start

stop:            ## stop it
	bash scripts/cluster.sh stop

psql:            ## psql into the demo database
	bash scripts/cluster.sh psql -d recommender_demo

bench:           ## Complete Journey in full: latency vs the peer service, memory, pgbench, evaluation -> BENCHMARKS.md
	bash bench/run.sh

bench-embed:     ## embedding throughput, first-call latency, memory on the demo store
	bash bench/embed_bench.sh

bench-queue:     ## bulk UPDATE of 10,000 products: sync vs deferred embedding (queue worker), on a server of its own
	bash bench/queue_bench.sh

bench-bulk:      ## one refresh_embeddings / process_queue call alone and with a helper process (5 rounds, 5,000 products), then Complete Journey's load (needs make bench's store)
	bash bench/refresh_scaling.sh 5 5000
	bash bench/load_scaling.sh

bench-analytics: ## recommendation_performance and abandoned_carts over 1M impressions (a copy of the demo store)
	bash bench/analytics_bench.sh

bench-majors:    ## homepage latency on make demo's store, once per PostgreSQL major (15, 16, 18)
	bash bench/majors.sh

evaluate:        ## offline evaluation: Complete Journey (time split) and MovieLens (last 10 per user), HR/Recall/NDCG@10 vs baselines
	bash bench/evaluate.sh
	bash bench/evaluate_movielens.sh

soak:            ## 5 minutes of pgbench (8 clients) on a copy of the demo store, then loss checks
	bash bench/soak.sh

clean: stop      ## remove the cluster, caches and build output
	rm -rf .run target dist
