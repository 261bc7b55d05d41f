//! `#[pg_test]`s of the models: MiniLM against its fp32 reference, batching, bad texts, the
//! backend's threads, missing or refused model files, the cross-encoder's reference scores and
//! its score cache.
#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    use recommender_core::pooling::cosine;

    use crate::testing::*;

    const REFERENCE: &str = include_str!("../../tests/fixtures/minilm-reference.json");
    const CE_REFERENCE: &str = include_str!("../../tests/fixtures/cross-encoder-reference.json");

    #[pg_test]
    fn embeddings_match_fp32_reference() {
        let r: serde_json::Value = serde_json::from_str(REFERENCE).unwrap();
        let sentences = r["sentences"].as_array().unwrap();
        let expected = r["embeddings"].as_array().unwrap();
        assert_eq!(sentences.len(), 21);
        for (s, e) in sentences.iter().zip(expected) {
            let want: Vec<f32> = e
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect();
            let got = embed(s.as_str().unwrap());
            assert_eq!(got.len(), 384);
            let c = cosine(&got, &want);
            assert!(c >= 0.9999, "cosine {c} for {s}");
        }
        let a = embed(r["published_check"]["a"].as_str().unwrap());
        let b = embed(r["published_check"]["b"].as_str().unwrap());
        let c = cosine(&a, &b);
        assert!((c - 0.7553).abs() <= 0.001, "published pair cosine {c}");
    }

    #[pg_test]
    fn batch_embedding_equals_single() {
        let r: serde_json::Value = serde_json::from_str(REFERENCE).unwrap();
        let sentences: Vec<String> = r["sentences"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect();
        // padded batch vs one-by-one: the mask must make padding invisible
        let n = Spi::get_one_with_args::<i64>(
            "SELECT count(*) FROM unnest(recommender.embed($1::text[])) WITH ORDINALITY AS b(v, i)
              JOIN unnest($1::text[]) WITH ORDINALITY AS s(t, j) ON i = j
             WHERE 1 - (v <=> recommender.embed(t)) > 0.99999",
            &[sentences.clone().into()],
        )
        .unwrap()
        .unwrap();
        assert_eq!(n, 21);
        // 84 texts take the bulk path (a session with pre-packed weights): the same vectors
        let r4: Vec<String> = sentences.iter().cycle().take(84).cloned().collect();
        let n = Spi::get_one_with_args::<i64>(
            "SELECT count(*) FROM unnest(recommender.embed($1::text[])) WITH ORDINALITY AS b(v, i)
              JOIN unnest($1::text[]) WITH ORDINALITY AS s(t, j) ON i = j
             WHERE 1 - (v <=> recommender.embed(t)) > 0.99999",
            &[r4.into()],
        )
        .unwrap()
        .unwrap();
        assert_eq!(n, 84);
        assert_eq!(
            count("SELECT cardinality(recommender.embed(ARRAY['a', NULL, 'b']))"),
            3
        );
        assert!(
            Spi::get_one::<bool>("SELECT (recommender.embed(ARRAY['a', NULL]))[2] IS NULL")
                .unwrap()
                .unwrap()
        );
        assert_eq!(
            count("SELECT coalesce(cardinality(recommender.embed('{}'::text[])), 0)"),
            0
        );
    }

    #[pg_test]
    fn null_empty_and_huge_text() {
        assert!(
            Spi::get_one::<bool>("SELECT recommender.embed(NULL::text) IS NULL")
                .unwrap()
                .unwrap()
        );
        let norm = Spi::get_one::<f64>("SELECT vector_norm(recommender.embed(''))")
            .unwrap()
            .unwrap();
        assert!((norm - 1.0).abs() < 1e-5);
        // 1 MB text: cut before tokenising, embedded without error
        let norm = Spi::get_one::<f64>(
            "SELECT vector_norm(recommender.embed(repeat('lorem ipsum ', 90000)))",
        )
        .unwrap()
        .unwrap();
        assert!((norm - 1.0).abs() < 1e-5);
        let c = Spi::get_one::<f64>("SELECT 1 - (recommender.embed('héllo wörld 👋 שלום') <=> recommender.embed('héllo wörld 👋 שלום'))").unwrap().unwrap();
        assert!(c > 0.99999);
    }

    /// ONNX Runtime runs with one intra-op and one inter-op thread and tokenizers without its
    /// rayon pool: batch embedding must not leave a thread pool behind in the backend.
    #[pg_test]
    fn backend_keeps_no_thread_pool() {
        Spi::run("SELECT recommender.embed(ARRAY['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'])")
            .unwrap();
        let threads = std::fs::read_dir("/proc/self/task").unwrap().count();
        assert!(
            threads <= 2,
            "backend has {threads} threads after embedding"
        );
    }

    /// A bulk call with `embedding_threads = 2` runs on a session of its own with two intra-op
    /// threads: the same vectors as one thread, and its pool is gone when the call ends.
    #[pg_test]
    fn bulk_embedding_on_two_threads_matches_one() {
        let texts =
            "ARRAY(SELECT 'item ' || g || ' in aisle ' || (g % 9) || repeat(' fresh', g % 5) \
                     FROM generate_series(1, 80) g)";
        Spi::run(&format!(
            "CREATE TEMP TABLE one AS SELECT g, e FROM unnest(recommender.embed({texts})) WITH ORDINALITY u(e, g)"
        ))
        .unwrap();
        let threads = || std::fs::read_dir("/proc/self/task").unwrap().count();
        let before = threads();
        Spi::run("SET recommender.embedding_threads = 2").unwrap();
        let min_cos = Spi::get_one::<f64>(&format!(
            "SELECT min(1 - (o.e <=> t.e)) FROM one o \
               JOIN unnest(recommender.embed({texts})) WITH ORDINALITY t(e, g) USING (g)"
        ))
        .unwrap()
        .unwrap();
        assert!(min_cos >= 0.9999, "min cosine {min_cos}");
        assert_eq!(count("SELECT count(*) FROM one"), 80);
        assert!(
            threads() <= before,
            "{} threads after, {before} before",
            threads()
        );
    }

    #[pg_test]
    fn missing_model_dir_is_58p01_and_session_survives() {
        Spi::run("SET recommender.model_dir = '/nonexistent/recommender-models'").unwrap();
        assert_eq!(sqlstate_of("SELECT recommender.embed('x')"), "58P01");
        // writes still succeed; the product is left stale with a WARNING
        seed_catalogue();
        assert_eq!(
            count("SELECT count(*) FROM recommender.products WHERE embedding IS NULL"),
            6
        );
        assert_eq!(
            count("SELECT stale FROM recommender.sync_status WHERE source = '(direct)'"),
            6
        );
        Spi::run("RESET recommender.model_dir").unwrap();
        assert_eq!(
            count("SELECT count(*) FROM (SELECT recommender.embed('x')) s"),
            1
        );
    }

    #[pg_test]
    fn missing_onnxruntime_library_is_58p01() {
        Spi::run("SET recommender.onnxruntime_library = '/nonexistent/libonnxruntime.so'").unwrap();
        assert_eq!(sqlstate_of("SELECT recommender.embed('x')"), "58P01");
        Spi::run("SET recommender.onnxruntime_library = 'relative/libonnxruntime.so'").unwrap();
        assert_eq!(sqlstate_of("SELECT recommender.embed('x')"), "22023");
    }

    /// A model dir whose manifest disagrees with the files: refused with 38000.
    #[pg_test]
    fn wrong_checksum_is_refused() {
        let real = crate::gucs::model_dir();
        let dir = format!("/tmp/recommender-badsum-{}", std::process::id());
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(format!("{dir}/encoder")).unwrap();
        for f in ["model.ort", "tokenizer.json"] {
            std::os::unix::fs::symlink(format!("{real}/encoder/{f}"), format!("{dir}/encoder/{f}"))
                .unwrap();
        }
        let size = std::fs::metadata(format!("{real}/encoder/model.ort"))
            .unwrap()
            .len();
        std::fs::write(
            format!("{dir}/manifest.json"),
            format!(
                r#"{{"files": {{"encoder/model.ort": {{"sha256": "{}", "size": {size}}}}}}}"#,
                "0".repeat(64)
            ),
        )
        .unwrap();
        Spi::run(&format!("SET recommender.model_dir = '{dir}'")).unwrap();
        assert_eq!(sqlstate_of("SELECT recommender.embed('x')"), "38000");
        // with verification off the same files load
        Spi::run("SET recommender.enable_checksums = off").unwrap();
        assert_eq!(sqlstate_of("SELECT recommender.embed('x')"), "00000");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[pg_test]
    fn model_info_reports_verified_encoder() {
        embed("warm up");
        let (loaded, verified) = Spi::get_two::<bool, bool>(
            "SELECT loaded, checksum_verified FROM recommender.model_info()",
        )
        .unwrap();
        assert_eq!(loaded, Some(true));
        assert_eq!(verified, Some(true));
        assert_eq!(
            Spi::get_one::<String>("SELECT name FROM recommender.model_info()")
                .unwrap()
                .as_deref(),
            Some("all-MiniLM-L6-v2")
        );
    }

    #[pg_test]
    fn warmup_loads_the_encoder() {
        assert_eq!(
            count("SELECT count(*) FROM recommender.warmup() WHERE model = 'encoder' AND loaded"),
            1
        );
        assert!(
            Spi::get_one::<bool>("SELECT loaded FROM recommender.model_info()")
                .unwrap()
                .unwrap()
        );
    }

    #[pg_test]
    fn cross_encoder_matches_reference() {
        use_test_cross_encoder();
        let r: serde_json::Value = serde_json::from_str(CE_REFERENCE).unwrap();
        for p in r["pairs"].as_array().unwrap() {
            let (q, d) = (
                p["query"].as_str().unwrap(),
                p["document"].as_str().unwrap(),
            );
            let (score, which) = Spi::get_two_with_args::<f64, String>(
                "SELECT score, reranker FROM recommender.rerank($1, ARRAY[$2])",
                &[q.into(), d.into()],
            )
            .unwrap();
            let want = recommender_core::scoring::sigmoid(p["logit"].as_f64().unwrap());
            assert_eq!(which.as_deref(), Some("cross-encoder"));
            assert!(
                (score.unwrap() - want).abs() < 1e-5,
                "{q} / {d}: {score:?} vs {want}"
            );
        }
        // the pipeline uses it too, and says so
        seed_store();
        assert_eq!(
            exts("SELECT DISTINCT reranker FROM recommender.homepage('u_coffee', 3)"),
            "cross-encoder"
        );
    }

    /// `rerank_threads = 2` reloads the cross-encoder with two intra-op threads: the same logits
    /// as one thread (the reference's, within 1e-5), one more thread in the backend while loaded.
    #[pg_test]
    fn cross_encoder_on_two_threads_matches_one() {
        use_test_cross_encoder();
        Spi::run("SET recommender.rerank_cache_size = 0").unwrap();
        Spi::run("SET recommender.rerank_share_seconds = 0").unwrap();
        let scores = "SELECT array_agg(score ORDER BY index) FROM recommender.rerank('strong coffee for mornings',                       ARRAY(SELECT 'roast ' || g || repeat(' beans', g % 4) FROM generate_series(1, 20) g))";
        let threads = || std::fs::read_dir("/proc/self/task").unwrap().count();
        let one: Vec<f64> = Spi::get_one(scores).unwrap().unwrap();
        let before = threads();
        Spi::run("SET recommender.rerank_threads = 2").unwrap();
        let two: Vec<f64> = Spi::get_one(scores).unwrap().unwrap();
        assert_eq!(one.len(), 20);
        for (a, b) in one.iter().zip(&two) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        assert_eq!(threads(), before + 1, "one intra-op thread more");
        Spi::run("SET recommender.rerank_threads = 1").unwrap();
        let again: Vec<f64> = Spi::get_one(scores).unwrap().unwrap();
        assert_eq!(
            threads(),
            before,
            "the two-thread session is dropped at the reload"
        );
        assert_eq!(one, again);
    }

    #[pg_test]
    fn cross_encoder_scores_are_kept_per_pair() {
        use crate::model::score_cache::{HITS, MISSES};
        use crate::model::{PAIRS_RUN, SHARED_HITS};
        use std::sync::atomic::Ordering::Relaxed;
        use_test_cross_encoder();
        seed_store();
        let page = "SELECT string_agg(product_id || ':' || coalesce(rerank_score::text, '-'), ',' ORDER BY position) \
                    FROM recommender.homepage('u_coffee', 5)";
        let first = exts(page);
        let rows = shared_rows();
        assert!(rows > 0);
        let (hits, misses) = (HITS.load(Relaxed), MISSES.load(Relaxed));
        // an unchanged profile: every pair comes from the cache, with the same scores
        assert_eq!(exts(page), first);
        assert!(HITS.load(Relaxed) > hits);
        assert_eq!(MISSES.load(Relaxed), misses);
        // a changed document is a new pair; the others stay cached
        let (hits, misses) = (HITS.load(Relaxed), MISSES.load(Relaxed));
        let (a, b) = Spi::get_two::<f64, f64>(
            "SELECT (SELECT score FROM recommender.rerank('coffee', ARRAY['dark roast'])), \
                    (SELECT score FROM recommender.rerank('coffee', ARRAY['dark roast', 'green tea']) WHERE index = 1)",
        )
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(MISSES.load(Relaxed) - misses, 2);
        assert_eq!(HITS.load(Relaxed) - hits, 1);
        // a backend cache of size 0 keeps nothing: the pairs come from the shared table, which
        // the first call wrote (rerank() with the caller's own texts wrote nothing there)
        assert_eq!(shared_rows(), rows);
        Spi::run("SET recommender.rerank_cache_size = 0").unwrap();
        let (misses, shared, run) = (
            MISSES.load(Relaxed),
            SHARED_HITS.load(Relaxed),
            PAIRS_RUN.load(Relaxed),
        );
        assert_eq!(exts(page), first);
        assert!(MISSES.load(Relaxed) > misses);
        assert!(SHARED_HITS.load(Relaxed) > shared);
        assert_eq!(PAIRS_RUN.load(Relaxed), run);
        // nothing shared either: the model runs, and scores the same
        Spi::run("SET recommender.rerank_share_seconds = 0").unwrap();
        let (shared, run) = (SHARED_HITS.load(Relaxed), PAIRS_RUN.load(Relaxed));
        assert_eq!(exts(page), first);
        assert_eq!(SHARED_HITS.load(Relaxed), shared);
        assert!(PAIRS_RUN.load(Relaxed) > run);
        // the prune deletes what is older than the setting (a day by default), nothing else
        Spi::run("RESET recommender.rerank_share_seconds").unwrap();
        let rows = shared_rows();
        Spi::run(
            "UPDATE recommender.rerank_scores SET stored_at = now() - interval '25 hours' \
              WHERE pair = (SELECT pair FROM recommender.rerank_scores ORDER BY pair LIMIT 1)",
        )
        .unwrap();
        assert_eq!(count("SELECT recommender.prune_rerank_scores()"), 1);
        assert_eq!(shared_rows(), rows - 1);
    }

    /// `recommender.rerank_budget` (0.27.0 library): a call whose cross-encoder pairs cannot be
    /// scored in time answers without stage 3 (reranker 'deferred', no rerank score, the rows of
    /// a call without rerank) and runs no model; pairs a call finds scored already need no time,
    /// so it reranks past its budget; with time to spare it ranks as without a budget.
    #[pg_test]
    fn a_rerank_past_its_budget_is_deferred() {
        use crate::model::PAIRS_RUN;
        use crate::pipeline::rerank::{KEEP_BUDGET, SPENT_MS};
        use std::sync::atomic::Ordering::Relaxed;
        use_test_cross_encoder();
        seed_store();
        // the clock and the cross-encoder are this session's SETs (a call with page settings
        // changed in its session has no budget: pg_test `page_settings_changed_in_the_session`)
        KEEP_BUDGET.store(true, Relaxed);
        let page = "SELECT string_agg(product_id || ':' || coalesce(rerank_score::text, '-') || ':' || reranker, ',' ORDER BY position) \
                    FROM recommender.homepage('u_coffee', 5)";
        let ids = "SELECT string_agg(product_id::text, ',' ORDER BY position) FROM recommender.homepage('u_coffee', 5)";
        Spi::run("SET recommender.enable_rerank = off").unwrap();
        let plain = exts(ids);
        Spi::run("RESET recommender.enable_rerank").unwrap();
        Spi::run("SET recommender.rerank_budget = 100").unwrap();
        SPENT_MS.store(1000, Relaxed);
        let run = PAIRS_RUN.load(Relaxed);
        let deferred = exts(page);
        SPENT_MS.store(0, Relaxed);
        assert_eq!(PAIRS_RUN.load(Relaxed), run, "no model run past the budget");
        assert!(!deferred.is_empty());
        for row in deferred.split(',') {
            assert!(row.ends_with(":-:deferred"), "{deferred}");
        }
        let deferred_ids: Vec<&str> = deferred
            .split(',')
            .map(|r| r.split(':').next().unwrap())
            .collect();
        assert_eq!(deferred_ids.join(","), plain);
        // time to spare: the model runs, and the page is the one without a budget
        Spi::run("SET recommender.rerank_budget = 60000").unwrap();
        let within = exts(page);
        assert!(PAIRS_RUN.load(Relaxed) > run);
        assert!(within.ends_with(":cross-encoder"), "{within}");
        Spi::run("RESET recommender.rerank_budget").unwrap();
        Spi::run("SET recommender.rerank_cache_size = 0; SET recommender.rerank_share_seconds = 0")
            .unwrap();
        assert_eq!(exts(page), within);
        // pairs scored already (this backend's cache) need no time: reranked past the budget
        Spi::run("RESET recommender.rerank_cache_size; RESET recommender.rerank_share_seconds")
            .unwrap();
        Spi::run("SET recommender.rerank_budget = 100").unwrap();
        SPENT_MS.store(1000, Relaxed);
        let run = PAIRS_RUN.load(Relaxed);
        let cached = exts(page);
        SPENT_MS.store(0, Relaxed);
        assert_eq!(PAIRS_RUN.load(Relaxed), run);
        assert_eq!(cached, within);
        // without the seam: the session's SETs take the budget away, and the call reranks
        KEEP_BUDGET.store(false, Relaxed);
        Spi::run("SET recommender.rerank_cache_size = 0; SET recommender.rerank_share_seconds = 0")
            .unwrap();
        SPENT_MS.store(1000, Relaxed);
        let run = PAIRS_RUN.load(Relaxed);
        let changed = exts(page);
        SPENT_MS.store(0, Relaxed);
        assert!(PAIRS_RUN.load(Relaxed) > run);
        assert_eq!(changed, within);
    }

    /// A shared pair read more than half of `rerank_share_seconds` after it was stored is kept
    /// again (0.22.0), so a pair still in use is not pruned; one read sooner is not written. A
    /// pair given twice is stored once.
    #[pg_test]
    fn a_shared_pair_still_read_is_kept_again() {
        use_test_cross_encoder();
        seed_store();
        let page = "SELECT count(*) FROM recommender.homepage('u_coffee', 5)";
        count(page);
        assert!(shared_rows() >= 2);
        let first_two = "(SELECT pair FROM recommender.rerank_scores ORDER BY pair LIMIT 2)";
        Spi::run(&format!(
            "UPDATE recommender.rerank_scores SET stored_at = now() - interval '13 hours' WHERE pair IN {first_two}; \
             UPDATE recommender.rerank_scores SET stored_at = now() - interval '1 hour' \
              WHERE pair = (SELECT pair FROM recommender.rerank_scores ORDER BY pair OFFSET 1 LIMIT 1)"
        ))
        .unwrap();
        // a backend that has not scored them reads them from the shared table
        Spi::run("SET recommender.rerank_cache_size = 0").unwrap();
        count(page);
        let ages = format!(
            "SELECT string_agg(CASE WHEN r.stored_at = now() THEN 'renewed' ELSE 'as it was' END, ',' ORDER BY r.pair) \
               FROM recommender.rerank_scores r WHERE r.pair IN {first_two}"
        );
        assert_eq!(exts(&ages), "renewed,as it was");
        let rows = shared_rows();
        Spi::run("SELECT recommender._keep_rerank_scores(ARRAY['\\x01', '\\x01']::bytea[], ARRAY[1, 2]::real[], 0)").unwrap();
        assert_eq!(shared_rows(), rows + 1);
    }

    /// A pair a backend keeps finding in its own cache is kept in the shared table again once
    /// half of `rerank_share_seconds` has passed since it was last kept there (0.23.0): stored
    /// again after it was pruned, with no model run; not sooner.
    #[pg_test]
    fn a_pair_read_from_the_backends_own_cache_is_kept_shared() {
        use crate::model::PAIRS_RUN;
        use std::sync::atomic::Ordering::Relaxed;
        use_test_cross_encoder();
        seed_store();
        let page = "SELECT count(*) FROM recommender.homepage('u_coffee', 5)";
        count(page);
        let rows = shared_rows();
        assert!(rows >= 2);
        Spi::run("SET recommender.rerank_share_seconds = 10").unwrap();
        Spi::run("DELETE FROM recommender.rerank_scores").unwrap();
        let run = PAIRS_RUN.load(Relaxed);
        count(page);
        assert_eq!(shared_rows(), 0, "kept less than 5 seconds ago");
        std::thread::sleep(std::time::Duration::from_millis(5100));
        count(page);
        assert_eq!(
            PAIRS_RUN.load(Relaxed),
            run,
            "scores read from the backend's cache"
        );
        assert_eq!(shared_rows(), rows);
    }

    /// With `recommender.precompute_homepage` on, a tracked user is queued; the queue worker's
    /// batch computes the homepage, and the user's next call (in a backend that has scored
    /// nothing, as another connection would) runs no model and returns the same rows.
    #[pg_test]
    fn a_queued_homepage_is_computed_ahead_so_the_next_call_runs_no_model() {
        use crate::model::PAIRS_RUN;
        use std::sync::atomic::Ordering::Relaxed;
        use_test_cross_encoder();
        seed_store();
        let track = "SELECT recommender.track('u_coffee', (SELECT min(product_id) FROM recommender.products), 'VIEW', \
                     occurred_at => recommender.clock() - interval '1 hour')";
        let queued = "SELECT count(*) FROM recommender.homepage_queue WHERE user_id = 'u_coffee'";
        Spi::run(track).unwrap();
        assert_eq!(count(queued), 0, "queued with the setting off");
        Spi::run("SET recommender.precompute_homepage = on").unwrap();
        Spi::run(track).unwrap();
        assert_eq!(count(queued), 1);
        assert_eq!(
            Spi::get_two::<i32, i32>("SELECT * FROM recommender._precompute_homepages(recommender._dequeue_homepages(1))").unwrap(),
            (Some(1), Some(0))
        );
        assert_eq!(count(queued), 0);
        assert_eq!(
            Spi::get_two::<i32, i32>("SELECT * FROM recommender._precompute_homepages(recommender._dequeue_homepages(1))").unwrap(),
            (Some(0), Some(0)),
            "nothing left to precompute"
        );
        Spi::run("SET recommender.rerank_cache_size = 0").unwrap();
        let page = "SELECT string_agg(product_id || ':' || coalesce(rerank_score::text, '-'), ',' ORDER BY position) \
                    FROM recommender.homepage('u_coffee', 5)";
        let run = PAIRS_RUN.load(Relaxed);
        let ahead = exts(page);
        assert_eq!(PAIRS_RUN.load(Relaxed), run, "the next call ran the model");
        // the same rows as computed from scratch
        Spi::run("SET recommender.rerank_share_seconds = 0").unwrap();
        Spi::run("SELECT recommender.rebuild_user_profile('u_coffee')").unwrap();
        assert_eq!(exts(page), ahead);
        assert!(PAIRS_RUN.load(Relaxed) > run);
    }

    /// `queue_homepages()` queues the users active within the interval before the clock, the most
    /// recently active first; a queued user keeps its place, a
    /// user whose interactions all come after the clock is not queued, and a non-positive
    /// interval is refused. A user an interaction queues later is taken first, and so is a queued user
    /// who interacts (0.23.0).
    #[pg_test]
    fn queue_homepages_queues_the_users_active_before_the_clock() {
        seed_store(); // clock 2024-03-01; u_late's only interaction is after it
        let queue = "SELECT string_agg(user_id, ',' ORDER BY queued_at, user_id) FROM recommender.homepage_queue";
        assert_eq!(
            count("SELECT recommender.queue_homepages(interval '14 days')"),
            1
        );
        assert_eq!(exts(queue), "u_coffee");
        assert_eq!(
            count("SELECT recommender.queue_homepages(interval '14 days')"),
            0,
            "already queued"
        );
        // an interval reaching past the earliest timestamp: every user, as NULL
        assert_eq!(
            count("SELECT recommender.queue_homepages(interval '300000 years')"),
            3
        );
        assert_eq!(count("SELECT recommender.queue_homepages(NULL)"), 0);
        assert_eq!(exts(queue), "u_coffee,u_audio,u_other2,u_other");
        for bad in ["interval '0'", "interval '-1 day'"] {
            assert_eq!(
                sqlstate_of(&format!("SELECT recommender.queue_homepages({bad})")),
                "22023"
            );
        }
        // a user queued by an interaction after the warm start is taken first
        Spi::run("SET recommender.precompute_homepage = on").unwrap();
        // a VIEW an hour before the clock, of the first or last product
        let view = |user: &str, pick: &str| {
            Spi::run(&format!(
                "SELECT recommender.track('{user}', (SELECT {pick}(product_id) FROM recommender.products), 'VIEW', \
                 occurred_at => recommender.clock() - interval '1 hour')"
            ))
            .unwrap()
        };
        view("u_new", "min");
        // a warm-started user who interacts is taken with them, before the other warm starts
        // (0.23.0)
        view("u_other", "min");
        assert_eq!(
            exts("SELECT string_agg(user_id, ',' ORDER BY user_id) FROM recommender.homepage_queue WHERE NOT warm_start"),
            "u_new,u_other"
        );
        // one an interaction queued keeps its place when they interact again
        Spi::run("UPDATE recommender.homepage_queue SET queued_at = now() - interval '1 hour' WHERE user_id = 'u_new'").unwrap();
        view("u_new", "max");
        assert_eq!(
            count("SELECT count(*) FROM recommender.homepage_queue WHERE user_id = 'u_new' AND queued_at = now() - interval '1 hour' AND NOT warm_start"),
            1
        );
        assert_eq!(
            exts("SELECT array_to_string(recommender._dequeue_homepages(2), ',')"),
            "u_new,u_other"
        );
        assert_eq!(
            Spi::get_two::<i32, i32>("SELECT * FROM recommender._precompute_homepages(recommender._dequeue_homepages(10))").unwrap(),
            (Some(3), Some(0))
        );
        assert_eq!(
            count("SELECT count(*) FROM recommender.user_profiles WHERE user_id IN ('u_coffee', 'u_audio', 'u_other2')"),
            3
        );
    }

    fn shared_rows() -> i64 {
        Spi::get_one::<i64>("SELECT count(*) FROM recommender.rerank_scores")
            .unwrap()
            .unwrap_or(0)
    }
}
