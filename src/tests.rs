//! `#[pg_test]`s: SPI, triggers, GUCs and SQLSTATEs against a real PostgreSQL 15 + pgvector and
//! the real all-MiniLM-L6-v2 weights. Each test runs in its own backend and transaction (rolled
//! back afterwards).
#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    use crate::core::pooling::cosine;

    const REFERENCE: &str = include_str!("../tests/fixtures/minilm-reference.json");

    fn embed(text: &str) -> Vec<f32> {
        Spi::get_one_with_args::<Vec<f32>>("SELECT recommender._embed($1)", &[text.into()])
            .expect("spi")
            .expect("not null")
    }

    /// SQLSTATE raised by `sql`, or 00000.
    fn sqlstate_of(sql: &str) -> String {
        Spi::run(
            "CREATE OR REPLACE FUNCTION pg_temp.sqlstate_of(q text) RETURNS text LANGUAGE plpgsql AS $f$
             BEGIN EXECUTE q; RETURN '00000'; EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE; END $f$",
        )
        .unwrap();
        Spi::get_one_with_args::<String>("SELECT pg_temp.sqlstate_of($1)", &[sql.into()])
            .unwrap()
            .unwrap()
    }

    fn count(sql: &str) -> i64 {
        Spi::get_one::<i64>(sql).unwrap().unwrap_or(0)
    }

    fn texts_embedded() -> i64 {
        count("SELECT texts_embedded FROM recommender.model_info()")
    }

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

    #[pg_test]
    fn embed_is_stable_not_immutable() {
        let v = Spi::get_one::<String>(
            "SELECT string_agg(DISTINCT provolatile::text, ',') FROM pg_proc
              WHERE pronamespace = 'recommender'::regnamespace AND proname IN ('_embed', '_embed_many', 'similar_products')
                 OR oid = 'recommender.embed(text)'::regprocedure",
        )
        .unwrap()
        .unwrap();
        assert_eq!(v, "s");
    }

    #[pg_test]
    fn unnest_of_embed_runs_the_model_once() {
        // a STABLE embed(text[]) would be evaluated once more by the planner (unnest's row estimate)
        let before = texts_embedded();
        assert_eq!(
            count(
                "SELECT count(*) FROM unnest(recommender.embed(ARRAY['one text', 'another text']))"
            ),
            2
        );
        assert_eq!(texts_embedded() - before, 2);
    }

    fn seed_catalogue() {
        Spi::run(
            "INSERT INTO recommender.products (external_id, name, description, category, price, stock) VALUES
               ('c1', 'Dark roast whole bean coffee', 'Fair trade arabica beans, 1 kg bag', 'Coffee', 14.50, 10),
               ('c2', 'Espresso ground coffee', 'Intense Italian roast, 250 g', 'Coffee', 6.90, 5),
               ('c3', 'Decaf coffee pods', 'Compatible capsules, 30 pods', 'Coffee', 9.00, 0),
               ('t1', 'Green tea bags', 'Japanese sencha, 40 bags', 'Tea', 4.20, 20),
               ('h1', 'Wireless noise-cancelling headphones', 'Over-ear, 30-hour battery', 'Audio', 199.00, 3),
               ('h2', 'Bluetooth earbuds', 'In-ear, charging case, 24-hour battery', 'Audio', 59.00, NULL)",
        )
        .unwrap();
    }

    fn id_of(ext: &str) -> i64 {
        Spi::get_one_with_args::<i64>(
            "SELECT product_id FROM recommender.products WHERE external_id = $1",
            &[ext.into()],
        )
        .unwrap()
        .unwrap()
    }

    #[pg_test]
    fn insert_embeds_and_similar_products_excludes_self_and_out_of_stock() {
        seed_catalogue();
        assert_eq!(count("SELECT count(*) FROM recommender.products WHERE embedding IS NOT NULL AND embedded_hash = text_hash"), 6);
        let c1 = id_of("c1");
        let top = Spi::get_one_with_args::<String>(
            "SELECT string_agg(external_product_id, ',' ORDER BY position) FROM recommender.similar_products($1, 3)",
            &[c1.into()],
        )
        .unwrap()
        .unwrap();
        assert!(
            top.starts_with("c2"),
            "nearest to c1 should be c2, got {top}"
        );
        assert!(
            !top.contains("c1") && !top.contains("c3"),
            "self or out-of-stock returned: {top}"
        );
        // k larger than the catalogue: every other in-stock product, once
        assert_eq!(
            count(&format!(
                "SELECT count(DISTINCT product_id) FROM recommender.similar_products({c1}, 1000)"
            )),
            4
        );
        // scores are blended in [0, 1] (x 1.1 for new arrivals), descending
        let ok = Spi::get_one_with_args::<bool>(
            "SELECT bool_and(score >= 0 AND score <= 1.1 + 1e-9) AND
                    bool_and(score <= coalesce(prev, score) + 1e-9) FROM
               (SELECT score, lag(score) OVER (ORDER BY position) AS prev FROM recommender.similar_products($1, 10)) s",
            &[c1.into()],
        )
        .unwrap()
        .unwrap();
        assert!(ok);
    }

    #[pg_test]
    fn price_or_stock_change_does_not_run_the_model() {
        seed_catalogue();
        let before = texts_embedded();
        let at = Spi::get_one::<String>(
            "SELECT embedded_at::text FROM recommender.products WHERE external_id = 'c1'",
        )
        .unwrap();
        // same price band (affordable: 10..50), stock change
        Spi::run(
            "UPDATE recommender.products SET price = 19.99, stock = 0 WHERE external_id = 'c1'",
        )
        .unwrap();
        assert_eq!(
            texts_embedded(),
            before,
            "a price/stock update ran the model"
        );
        let at2 = Spi::get_one::<String>(
            "SELECT embedded_at::text FROM recommender.products WHERE external_id = 'c1'",
        )
        .unwrap();
        assert_eq!(at, at2);
        // a name change re-embeds exactly that product
        Spi::run("UPDATE recommender.products SET name = 'Medium roast whole bean coffee' WHERE external_id = 'c1'").unwrap();
        assert_eq!(texts_embedded(), before + 1);
        assert_eq!(count("SELECT count(*) FROM recommender.products WHERE embedded_hash IS DISTINCT FROM text_hash"), 0);
        // crossing a price band changes the text, so it re-embeds
        Spi::run("UPDATE recommender.products SET price = 60 WHERE external_id = 'c1'").unwrap();
        assert_eq!(texts_embedded(), before + 2);
    }

    #[pg_test]
    fn embed_product_and_force() {
        seed_catalogue();
        let c1 = id_of("c1");
        assert!(!Spi::get_one_with_args::<bool>(
            "SELECT recommender.embed_product($1)",
            &[c1.into()]
        )
        .unwrap()
        .unwrap());
        assert!(Spi::get_one_with_args::<bool>(
            "SELECT recommender.embed_product($1, force => true)",
            &[c1.into()]
        )
        .unwrap()
        .unwrap());
        assert_eq!(
            sqlstate_of("SELECT recommender.embed_product(-42)"),
            "22023"
        );
        assert!(
            Spi::get_one::<bool>("SELECT recommender.embed_product(NULL) IS NULL")
                .unwrap()
                .unwrap()
        );
    }

    #[pg_test]
    fn bad_k_and_unknown_product() {
        seed_catalogue();
        for k in ["0", "-1", "1001", "2147483647"] {
            assert_eq!(
                sqlstate_of(&format!(
                    "SELECT * FROM recommender.similar_products(1, {k})"
                )),
                "22023",
                "k = {k}"
            );
        }
        assert_eq!(
            count("SELECT count(*) FROM recommender.similar_products(-7, 5)"),
            0
        );
        assert_eq!(
            count("SELECT count(*) FROM recommender.similar_products(NULL, 5)"),
            0
        );
    }

    #[pg_test(error = "recommender: k must be between 1 and 1000, got 0")]
    fn bad_k_message() {
        Spi::run("SELECT * FROM recommender.similar_products(1, 0)").unwrap();
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

    fn make_shop() {
        Spi::run(
            "CREATE SCHEMA shop;
             CREATE TABLE shop.items (sku int PRIMARY KEY, title text, blurb text, dept text, cost numeric, qty int, pic text);
             INSERT INTO shop.items VALUES
               (1, 'Dark roast coffee', 'Whole beans', 'Coffee', 12, 4, 'https://img/1'),
               (2, 'Espresso', 'Ground', 'Coffee', 7, 0, NULL),
               (3, 'Sencha', 'Green tea', 'Tea', 5, 9, NULL);",
        )
        .unwrap();
        let n = Spi::get_one::<i64>(
            "SELECT recommender.sync_products('shop.items', id_column => 'sku', name_column => 'title',
                description_column => 'blurb', category_column => 'dept', price_column => 'cost',
                stock_column => 'qty', image_url_column => 'pic')",
        )
        .unwrap()
        .unwrap();
        assert_eq!(n, 3);
    }

    #[pg_test]
    fn sync_products_follows_inserts_updates_deletes() {
        make_shop();
        // the initial load defers embedding to refresh_embeddings()
        assert_eq!(count("SELECT count(*) FROM recommender.products WHERE source = 'shop.items'::regclass AND embedding IS NULL"), 3);
        Spi::run("SELECT recommender._reembed(array_agg(product_id)) FROM recommender.products")
            .unwrap();
        // insert flows in, embedded by the trigger
        Spi::run(
            "INSERT INTO shop.items VALUES (4, 'Oolong tea', 'Loose leaf', 'Tea', 9, 2, NULL)",
        )
        .unwrap();
        assert_eq!(count("SELECT count(*) FROM recommender.products WHERE external_id = '4' AND embedding IS NOT NULL AND category = 'Tea'"), 1);
        // price + stock update: no model run
        let before = texts_embedded();
        Spi::run("UPDATE shop.items SET cost = 13, qty = 0 WHERE sku = 1").unwrap();
        assert_eq!(texts_embedded(), before);
        assert_eq!(count("SELECT count(*) FROM recommender.products WHERE external_id = '1' AND price = 13 AND NOT in_stock"), 1);
        // a text change: one model run
        Spi::run("UPDATE shop.items SET title = 'Light roast coffee' WHERE sku = 1").unwrap();
        assert_eq!(texts_embedded(), before + 1);
        // id change moves the product
        Spi::run("UPDATE shop.items SET sku = 10 WHERE sku = 3").unwrap();
        assert_eq!(
            count("SELECT count(*) FROM recommender.products WHERE external_id IN ('3', '10')"),
            1
        );
        assert_eq!(
            count("SELECT count(*) FROM recommender.products WHERE external_id = '10'"),
            1
        );
        // delete and truncate
        Spi::run("DELETE FROM shop.items WHERE sku = 2").unwrap();
        assert_eq!(
            count(
                "SELECT count(*) FROM recommender.products WHERE source = 'shop.items'::regclass"
            ),
            3
        );
        Spi::run("TRUNCATE shop.items").unwrap();
        assert_eq!(
            count(
                "SELECT count(*) FROM recommender.products WHERE source = 'shop.items'::regclass"
            ),
            0
        );
    }

    #[pg_test]
    fn bulk_update_of_10000_rows_without_text_change_runs_no_model() {
        Spi::run(
            "CREATE SCHEMA shop;
             CREATE TABLE shop.bulk (id bigint PRIMARY KEY, name text, price numeric, stock int);
             INSERT INTO shop.bulk SELECT g, 'Item ' || (g % 50), 20 + (g % 7), 5 FROM generate_series(1, 10000) g;",
        )
        .unwrap();
        Spi::run("SELECT recommender.sync_products('shop.bulk', price_column => 'price', stock_column => 'stock')").unwrap();
        // embed once (the distinct texts are few, but every row gets its vector)
        Spi::run("SELECT recommender._reembed(array_agg(product_id)) FROM recommender.products")
            .unwrap();
        let before = texts_embedded();
        Spi::run("UPDATE shop.bulk SET price = price + 1, stock = stock - 1").unwrap();
        assert_eq!(
            texts_embedded(),
            before,
            "bulk price/stock update ran the model"
        );
        assert_eq!(
            count("SELECT count(*) FROM recommender.products WHERE stock = 4"),
            10000
        );
        // a bulk text change on 100 rows: embedded in batches within the statement
        let runs_before = count("SELECT model_runs FROM recommender.model_info()");
        Spi::run("UPDATE shop.bulk SET name = name || ' v2' WHERE id <= 100").unwrap();
        // each distinct new text ran once (the embedded text has a price band, not the price)
        let distinct = count(
            "SELECT count(DISTINCT text_hash) FROM recommender.products WHERE name LIKE '% v2'",
        );
        assert!(distinct > 1 && distinct < 100, "{distinct} distinct texts");
        assert_eq!(texts_embedded(), before + distinct);
        assert_eq!(
            count("SELECT count(*) FROM recommender.products WHERE name LIKE '% v2' AND embedded_hash = text_hash AND embedding IS NOT NULL"),
            100
        );
        let runs = count("SELECT model_runs FROM recommender.model_info()") - runs_before;
        assert!(
            (1..=10).contains(&runs),
            "100 texts should take a few batched runs, took {runs}"
        );
    }

    #[pg_test]
    fn sync_products_bad_mapping() {
        Spi::run("CREATE TABLE public.nocols (id int PRIMARY KEY, title text, price text)")
            .unwrap();
        assert_eq!(
            sqlstate_of("SELECT recommender.sync_products('public.nocols')"),
            "42703"
        );
        assert_eq!(sqlstate_of("SELECT recommender.sync_products('public.nocols', name_column => 'title', description_column => 'nope')"), "42703");
        assert_eq!(sqlstate_of("SELECT recommender.sync_products('public.nocols', name_column => 'title', price_column => 'price')"), "42804");
        assert_eq!(
            sqlstate_of("SELECT recommender.sync_products('public.no_such_table')"),
            "42P01"
        );
        // a hostile identifier is just a (missing) column name, never SQL
        assert_eq!(
            sqlstate_of("SELECT recommender.sync_products('public.nocols', name_column => 'title); DROP TABLE public.nocols; --')"),
            "42703"
        );
        assert_eq!(
            count("SELECT count(*) FROM pg_class WHERE relname = 'nocols'"),
            1
        );
    }

    #[pg_test]
    fn sync_sanitises_bad_prices_instead_of_failing_the_app() {
        Spi::run(
            "CREATE TABLE public.weird (id text PRIMARY KEY, name text, price float8, instock boolean);
             INSERT INTO public.weird VALUES ('a', 'NaN price', 'NaN', true), ('b', 'Inf price', 'Infinity', false),
                                             ('c', 'Negative', -5, NULL), ('d', NULL, 3, true);",
        )
        .unwrap();
        Spi::run("SELECT recommender.sync_products('public.weird', price_column => 'price', stock_column => 'instock')").unwrap();
        assert_eq!(
            count("SELECT count(*) FROM recommender.products WHERE price IS NULL"),
            3
        );
        assert_eq!(
            count("SELECT count(*) FROM recommender.products WHERE NOT in_stock"),
            1
        );
        assert_eq!(
            count(
                "SELECT count(*) FROM recommender.products WHERE external_id = 'd' AND name = ''"
            ),
            1
        );
        Spi::run("INSERT INTO public.weird VALUES ('e', 'more NaN', 'NaN', true)").unwrap();
        assert_eq!(count("SELECT count(*) FROM recommender.products WHERE external_id = 'e' AND embedding IS NOT NULL"), 1);
    }

    // ---------------------------------------------------------------------------------------
    // The pipeline, on a store whose right answers are known by construction
    // ---------------------------------------------------------------------------------------

    const CE_REFERENCE: &str = include_str!("../tests/fixtures/cross-encoder-reference.json");

    fn test_cross_encoder_dir() -> String {
        let models = crate::gucs::model_dir();
        let share = std::path::Path::new(&models)
            .parent()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        format!("{share}/test-models/cross-encoder")
    }

    /// 16 products in 5 categories; u_coffee bought only coffee; baskets pair coffee with milk.
    fn seed_store() {
        Spi::run(
            "SET recommender.as_of = '2024-03-01 00:00+00';
             INSERT INTO recommender.products (external_id, name, description, category, price, stock, created_at) VALUES
              ('c1','Dark roast whole bean coffee','Fair trade arabica beans','Coffee',14.5,10,'2023-01-01'),
              ('c2','Espresso ground coffee','Intense Italian roast','Coffee',6.9,5,'2023-01-01'),
              ('c3','Colombian medium roast coffee beans','Single origin','Coffee',11,8,'2023-01-01'),
              ('c4','Decaf coffee capsules','30 pods','Coffee',9,0,'2023-01-01'),
              ('c5','Instant coffee granules','Freeze dried','Coffee',5,9,'2023-01-01'),
              ('t1','Japanese green tea','Sencha bags','Tea',4.2,20,'2023-01-01'),
              ('t2','Earl Grey black tea','Bergamot loose leaf','Tea',5,20,'2023-01-01'),
              ('m1','Whole milk','1 litre bottle','Dairy',1.2,50,'2023-01-01'),
              ('m2','Oat milk','Barista edition','Dairy',2.5,50,'2023-01-01'),
              ('a1','Wireless noise-cancelling headphones','Over-ear','Audio',199,3,'2023-01-01'),
              ('a2','Bluetooth speaker','Waterproof','Audio',45,3,'2023-01-01'),
              ('a3','Wired earbuds','In-ear','Audio',15,3,'2023-01-01'),
              ('k1','Burr coffee grinder','Conical burrs','Kitchen',89,4,'2023-01-01'),
              ('k2','Milk frother','Handheld','Kitchen',12,4,'2023-01-01'),
              ('k3','French press coffee maker','1 litre glass','Kitchen',29,4,'2024-02-25'),
              ('k4','Chef knife','Stainless steel','Kitchen',39,4,'2023-01-01');
             CREATE TEMP TABLE ev (u text, ext text, t recommender.interaction_type, b text, at timestamptz);
             INSERT INTO ev VALUES
              ('u_coffee','c1','PURCHASE','b1','2024-02-01'), ('u_coffee','c2','PURCHASE','b2','2024-02-10'),
              ('u_coffee','c3','VIEW',NULL,'2024-02-20'),
              ('u_other','c1','PURCHASE','b3','2024-02-05'), ('u_other','m1','PURCHASE','b3','2024-02-05'),
              ('u_other2','c1','PURCHASE','b4','2024-02-06'), ('u_other2','m1','PURCHASE','b4','2024-02-06'),
              ('u_other2','k1','PURCHASE','b4','2024-02-06'),
              ('u_audio','a1','PURCHASE','b5','2024-02-07'), ('u_audio','a2','VIEW',NULL,'2024-02-08'),
              ('u_late','a3','PURCHASE','b6','2024-06-01');
             INSERT INTO recommender.interactions (user_id, product_id, type, basket_id, occurred_at)
             SELECT e.u, p.product_id, e.t, e.b, e.at FROM ev e JOIN recommender.products p ON p.external_id = e.ext;",
        )
        .unwrap();
    }

    fn exts(sql: &str) -> String {
        Spi::get_one::<String>(sql).unwrap().unwrap_or_default()
    }

    #[pg_test]
    fn coffee_buyer_gets_coffee_first() {
        seed_store();
        let top = exts("SELECT string_agg(category, ',' ORDER BY position) FROM recommender.homepage('u_coffee', 3)");
        assert!(top.starts_with("Coffee"), "coffee buyer got {top}");
        let names = exts("SELECT string_agg(name, ';' ORDER BY position) FROM recommender.homepage('u_coffee', 8)");
        assert!(
            !names.contains("Decaf"),
            "out-of-stock product returned: {names}"
        );
        // the cache: one profile, built from the 3 interactions before the clock
        Spi::run("RESET recommender.as_of").unwrap();
        Spi::run("SELECT * FROM recommender.homepage('u_coffee', 3)").unwrap();
        assert_eq!(count("SELECT interaction_count FROM recommender.user_profiles WHERE user_id = 'u_coffee'"), 3);
    }

    #[pg_test]
    fn profile_cache_keeps_collaborative_candidates_and_query_embedding() {
        seed_store();
        let q = "SELECT string_agg(product_id || ':' || round(score::numeric, 6) || ':' || sources, ',' ORDER BY position) FROM recommender.homepage('u_coffee', 6)";
        let first = exts(q);
        assert_eq!(
            count("SELECT count(*) FROM recommender.user_profiles WHERE user_id = 'u_coffee'
                     AND collab_ids IS NOT NULL AND query_embedding IS NOT NULL AND rerank_query <> ''"),
            1
        );
        // served from the cache: the same rows
        assert_eq!(exts(q), first);
        // recomputed on every call: still the same rows
        Spi::run("SET recommender.collaborative_cache_seconds = 0").unwrap();
        assert_eq!(exts(q), first);
        // a new interaction of the user rebuilds the profile and drops what was kept with it
        Spi::run("SELECT recommender.track('u_coffee', (SELECT min(product_id) FROM recommender.products), 'VIEW', occurred_at => '2024-01-01')").unwrap();
        Spi::run("SELECT count(*) FROM recommender.homepage('u_coffee', 6)").unwrap();
        assert_eq!(
            count("SELECT interaction_count FROM recommender.user_profiles WHERE user_id = 'u_coffee'"),
            4
        );
    }

    #[pg_test]
    fn rules_cap_categories_and_fill_k() {
        seed_store();
        Spi::run("SET recommender.max_per_category = 1").unwrap();
        assert_eq!(
            count("SELECT count(*) FROM recommender.homepage('u_coffee', 5)"),
            5
        );
        assert_eq!(count("SELECT max(n) FROM (SELECT count(*) n FROM recommender.homepage('u_coffee', 5) GROUP BY category) s"), 1);
        // a tiny candidate pool, all coffee: the refill fetches neighbours from other categories
        Spi::run(
            "SET recommender.content_candidates = 1; SET recommender.collaborative_candidates = 0",
        )
        .unwrap();
        assert_eq!(
            count("SELECT count(*) FROM recommender.homepage('u_coffee', 5)"),
            5
        );
        assert_eq!(
            count("SELECT count(DISTINCT category) FROM recommender.homepage('u_coffee', 5)"),
            5
        );
        Spi::run(
            "RESET recommender.content_candidates; RESET recommender.collaborative_candidates",
        )
        .unwrap();
        Spi::run("SET recommender.max_per_category = 3").unwrap();
        // every in-stock product (15), no duplicates, when k is large
        assert_eq!(
            count("SELECT count(DISTINCT product_id) FROM recommender.homepage('u_coffee', 1000)"),
            13
        );
        Spi::run("SET recommender.enable_repurchase = off").unwrap();
        assert_eq!(
            count("SELECT count(*) FROM recommender.homepage('u_coffee', 1000) WHERE external_product_id IN ('c1', 'c2')"),
            0
        );
    }

    #[pg_test]
    fn weights_change_the_order() {
        seed_store();
        Spi::run("SET recommender.weight_content = 0; SET recommender.weight_collaborative = 0; SET recommender.weight_popularity = 1; SET recommender.enable_rerank = off").unwrap();
        // c1 is the most popular product in the window (3 purchases)
        assert_eq!(
            exts("SELECT external_product_id FROM recommender.homepage('u_coffee', 1)"),
            "c1"
        );
        Spi::run("SET recommender.weight_content = 1; SET recommender.weight_popularity = 0; SET recommender.new_arrival_boost = 0")
            .unwrap();
        let by_content = exts("SELECT string_agg(external_product_id, ',' ORDER BY position) FROM recommender.homepage('u_coffee', 3)");
        let scores_desc = Spi::get_one::<bool>(
            "SELECT bool_and(content_score <= coalesce(prev, content_score) + 1e-12) FROM
               (SELECT content_score, lag(content_score) OVER (ORDER BY position) prev FROM recommender.homepage('u_coffee', 6)) s",
        )
        .unwrap()
        .unwrap();
        assert!(
            scores_desc,
            "with only alpha the order must follow content scores ({by_content})"
        );
    }

    #[pg_test]
    fn cold_start_and_clock() {
        seed_store();
        let src =
            exts("SELECT string_agg(DISTINCT sources, ',') FROM recommender.homepage('nobody', 5)");
        assert_eq!(src, "popular");
        assert_eq!(
            exts("SELECT external_product_id FROM recommender.homepage('nobody', 1)"),
            "c1"
        );
        // u_late's purchase is after the clock: a cold-start user at 2024-03-01
        assert_eq!(
            exts("SELECT string_agg(DISTINCT sources, ',') FROM recommender.homepage('u_late', 3)"),
            "popular"
        );
        Spi::run("SET recommender.as_of = '2024-07-01'").unwrap();
        assert!(exts(
            "SELECT string_agg(DISTINCT sources, ',') FROM recommender.homepage('u_late', 3)"
        )
        .contains("content"));
        assert!(
            Spi::get_one::<bool>("SELECT recommender.clock() = '2024-07-01'::timestamptz")
                .unwrap()
                .unwrap()
        );
    }

    #[pg_test]
    fn new_arrivals_get_the_boost() {
        seed_store();
        // k3 was created 5 days before the clock
        Spi::run("SET recommender.new_arrival_boost = 0; SET recommender.max_per_category = 100")
            .unwrap();
        let p0 = count("SELECT position FROM recommender.homepage('u_coffee', 1000) WHERE external_product_id = 'k3'");
        Spi::run("SET recommender.new_arrival_boost = 2").unwrap();
        let p1 = count("SELECT position FROM recommender.homepage('u_coffee', 1000) WHERE external_product_id = 'k3'");
        assert!(p1 < p0, "boost moved k3 from {p0} to {p1}");
    }

    #[pg_test]
    fn co_purchase_comes_back_from_frequently_bought_together() {
        seed_store();
        let fbt = exts(
            "SELECT string_agg(external_product_id || ':' || source, ',' ORDER BY position)
               FROM recommender.frequently_bought_together((SELECT product_id FROM recommender.products WHERE external_id = 'c1'), 4)",
        );
        assert!(
            fbt.starts_with("m1:co_purchase,k1:co_purchase"),
            "got {fbt}"
        );
        assert!(
            fbt.contains(":similarity"),
            "too little data must fall back to similarity: {fbt}"
        );
        assert_eq!(count("SELECT baskets FROM recommender.copurchase c JOIN recommender.products a ON a.product_id = c.product_a JOIN recommender.products b ON b.product_id = c.product_b WHERE a.external_id = 'c1' AND b.external_id = 'm1'"), 2);
    }

    #[pg_test]
    fn cart_never_returns_cart_items() {
        seed_store();
        let ids =
            "ARRAY[(SELECT product_id FROM recommender.products WHERE external_id = 'c1'), -5]";
        let r = exts(&format!("SELECT string_agg(external_product_id, ',' ORDER BY position) FROM recommender.cart({ids}, 5)"));
        assert!(!r.split(',').any(|x| x == "c1"), "cart item returned: {r}");
        let src = exts(&format!(
            "SELECT sources FROM recommender.cart({ids}, 5) WHERE external_product_id = 'm1'"
        ));
        assert!(
            src.contains("co_purchase"),
            "co-purchased milk should be there: {r} / {src}"
        );
        // a user's cart from CART_ADD / CART_REMOVE
        Spi::run(
            "SELECT recommender.track('u_cart', product_id, 'CART_ADD', occurred_at => '2024-02-28') FROM recommender.products WHERE external_id IN ('a1', 'm2');
             SELECT recommender.track('u_cart', product_id, 'CART_REMOVE', occurred_at => '2024-02-28') FROM recommender.products WHERE external_id = 'm2';",
        )
        .unwrap();
        let r = exts("SELECT string_agg(external_product_id, ',' ORDER BY position) FROM recommender.cart('u_cart', 5)");
        assert!(!r.split(',').any(|x| x == "a1"), "cart item returned: {r}");
        assert!(exts("SELECT category FROM recommender.cart('u_cart', 1)") == "Audio");
    }

    #[pg_test]
    fn frequently_bought_together_shows_one_product_per_name_and_never_the_pages_name() {
        seed_store();
        // copies under other ids: of the page's product, and of its co-purchase partner (bought
        // with it in a basket of its own)
        Spi::run(
            "INSERT INTO recommender.products (external_id, name, description, category, price, stock, created_at) VALUES
              ('c1-copy','Dark roast whole bean coffee','Fair trade arabica beans','Coffee',14.5,10,'2023-01-01'),
              ('m1-copy','Whole milk','1 litre bottle','Dairy',1.2,50,'2023-01-01');
             INSERT INTO recommender.interactions (user_id, product_id, type, basket_id, occurred_at)
             SELECT 'u_copy', product_id, 'PURCHASE', 'b-copy', '2024-02-09' FROM recommender.products
              WHERE external_id IN ('c1', 'm1-copy');",
        )
        .unwrap();
        let names = exts(
            "SELECT string_agg(lower(name), '|' ORDER BY position) FROM recommender.frequently_bought_together(
               (SELECT product_id FROM recommender.products WHERE external_id = 'c1'), 6)",
        );
        let list: Vec<&str> = names.split('|').collect();
        assert_eq!(list.len(), 6, "k rows: {names}");
        assert!(
            !list.contains(&"dark roast whole bean coffee"),
            "the page's own name came back: {names}"
        );
        let distinct: std::collections::HashSet<&&str> = list.iter().collect();
        assert_eq!(
            distinct.len(),
            list.len(),
            "a name came back twice: {names}"
        );
    }

    #[pg_test]
    fn a_bot_profile_reads_only_the_most_recent_interactions() {
        seed_store();
        // 50 coffee views, then 10,000 newer headphone views: the profile reads the newest 10,000
        Spi::run(
            "INSERT INTO recommender.interactions (user_id, product_id, type, occurred_at)
             SELECT 'u_bot', p.product_id, 'VIEW', '2024-01-01'::timestamptz + g * interval '1 second'
               FROM generate_series(1, 10050) g
               JOIN recommender.products p ON p.external_id = CASE WHEN g <= 50 THEN 'c1' ELSE 'a1' END",
        )
        .unwrap();
        Spi::run("SELECT * FROM recommender.homepage('u_bot', 3)").unwrap();
        assert_eq!(
            exts("SELECT top_categories::text FROM recommender.user_profiles WHERE user_id = 'u_bot'"),
            "{Audio}"
        );
        // the cache key still counts every interaction, so the next call reuses the profile
        assert_eq!(
            count(
                "SELECT interaction_count FROM recommender.user_profiles WHERE user_id = 'u_bot'"
            ),
            10050
        );
        Spi::run(
            "UPDATE recommender.user_profiles SET rerank_query = 'kept' WHERE user_id = 'u_bot'",
        )
        .unwrap();
        Spi::run("SELECT * FROM recommender.homepage('u_bot', 3)").unwrap();
        assert_eq!(
            exts("SELECT rerank_query FROM recommender.user_profiles WHERE user_id = 'u_bot'"),
            "kept"
        );
    }

    #[pg_test]
    fn the_cart_is_one_definition_that_a_purchase_empties_at_the_clock() {
        seed_store();
        let cart = || {
            exts("SELECT string_agg(p.external_id, ',' ORDER BY p.external_id)
                    FROM recommender._cart('u_buyer', recommender.clock()) c JOIN recommender.products p USING (product_id)")
        };
        Spi::run(
            "SELECT recommender.track('u_buyer', product_id, 'CART_ADD', occurred_at => '2024-02-20') FROM recommender.products WHERE external_id IN ('a1', 'm2');
             SELECT recommender.track('u_buyer', product_id, 'PURCHASE', occurred_at => '2024-02-25') FROM recommender.products WHERE external_id = 'c1';
             SELECT recommender.track('u_buyer', product_id, 'CART_ADD', occurred_at => '2024-02-27') FROM recommender.products WHERE external_id = 'm1';",
        )
        .unwrap();
        // at 2024-03-01 the checkout of 02-25 emptied the cart of 02-20: only m1 is in it
        assert_eq!(cart(), "m1");
        let abandoned = exts("SELECT string_agg(p.external_id, ',' ORDER BY p.external_id)
                                FROM recommender.abandoned_carts(interval '1 hour', 0) a, unnest(a.product_ids) u(id)
                                JOIN recommender.products p ON p.product_id = u.id WHERE a.user_id = 'u_buyer'");
        assert_eq!(abandoned, "m1");
        // cart(user_id, k) centres on m1 and never shows it
        let r = exts("SELECT string_agg(external_product_id, ',' ORDER BY position) FROM recommender.cart('u_buyer', 5)");
        assert!(!r.split(',').any(|x| x == "m1"), "cart item returned: {r}");
        // the clock: on 02-22 the cart held a1 and m2
        Spi::run("SET recommender.as_of = '2024-02-22'").unwrap();
        assert_eq!(cart(), "a1,m2");
        Spi::run("SET recommender.as_of = '2024-03-01 00:00+00'").unwrap();
    }

    #[pg_test]
    fn aggregates_match_a_full_rebuild() {
        seed_store();
        Spi::run("DELETE FROM recommender.interactions WHERE user_id = 'u_other2' AND product_id = (SELECT product_id FROM recommender.products WHERE external_id = 'm1')").unwrap();
        Spi::run("UPDATE recommender.interactions SET basket_id = 'b1' WHERE basket_id = 'b2'")
            .unwrap();
        let snap = "SELECT md5(string_agg(x, ';' ORDER BY x)) FROM (
                      SELECT format('d%s/%s/%s/%s', product_id, day, weight, purchases) x FROM recommender.product_daily WHERE weight <> 0 OR purchases <> 0
                      UNION ALL SELECT format('u%s/%s/%s/%s', user_id, product_id, weight, purchases) FROM recommender.user_products WHERE weight <> 0 OR purchases <> 0
                      UNION ALL SELECT format('c%s/%s/%s', product_a, product_b, baskets) FROM recommender.copurchase WHERE baskets <> 0) s";
        let incremental = exts(snap);
        Spi::run("SET client_min_messages = warning; SELECT recommender.refresh_aggregates()")
            .unwrap();
        assert_eq!(incremental, exts(snap));
    }

    #[pg_test]
    fn track_validates_and_profiles_follow() {
        seed_store();
        Spi::run("RESET recommender.as_of").unwrap();
        assert_eq!(
            sqlstate_of("SELECT recommender.track('u', -1, 'VIEW')"),
            "22023"
        );
        assert_eq!(
            sqlstate_of("SELECT recommender.track(NULL, 1, 'VIEW')"),
            "22004"
        );
        assert_eq!(
            sqlstate_of("SELECT recommender.track('u', 1, 'LIKE')"),
            "22P02"
        );
        Spi::run("SELECT * FROM recommender.homepage('u_audio', 2)").unwrap();
        let before = count(
            "SELECT last_interaction_id FROM recommender.user_profiles WHERE user_id = 'u_audio'",
        );
        let id = count("SELECT recommender.track('u_audio', product_id, 'PURCHASE') FROM recommender.products WHERE external_id = 'a3'");
        assert!(id > before);
        Spi::run("SELECT * FROM recommender.homepage('u_audio', 2)").unwrap();
        assert_eq!(count("SELECT last_interaction_id FROM recommender.user_profiles WHERE user_id = 'u_audio'"), id);
        assert_eq!(
            count("SELECT recommender.rebuild_user_profile('u_audio')"),
            3
        );
        assert_eq!(
            count("SELECT recommender.rebuild_user_profile('nobody')"),
            0
        );
    }

    #[pg_test]
    fn bad_input_everywhere() {
        seed_store();
        for q in [
            "SELECT * FROM recommender.homepage('u', 0)",
            "SELECT * FROM recommender.homepage('u', 1001)",
            "SELECT * FROM recommender.cart(ARRAY[1]::bigint[], -1)",
            "SELECT * FROM recommender.cart('u', 2147483647)",
            "SELECT * FROM recommender.frequently_bought_together(1, 0)",
        ] {
            assert_eq!(sqlstate_of(q), "22023", "{q}");
        }
        assert_eq!(
            count("SELECT count(*) FROM recommender.homepage(NULL, 5)"),
            0
        );
        assert_eq!(
            count("SELECT count(*) FROM recommender.frequently_bought_together(-1, 5)"),
            0
        );
        assert_eq!(
            count("SELECT count(*) FROM recommender.cart(ARRAY[]::bigint[], 5)"),
            5
        );
        assert_eq!(
            count("SELECT count(*) FROM recommender.rerank('q', ARRAY[]::text[])"),
            0
        );
        // hostile user ids are data
        assert_eq!(count("SELECT count(*) FROM recommender.homepage($$'; DROP TABLE recommender.products; --$$, 3)"), 3);
        assert_eq!(count("SELECT count(*) FROM recommender.products"), 16);
    }

    #[pg_test]
    fn empty_store_gives_zero_rows() {
        assert_eq!(
            count("SELECT count(*) FROM recommender.homepage('anyone', 10)"),
            0
        );
        assert_eq!(
            count("SELECT count(*) FROM recommender.cart(ARRAY[1, 2]::bigint[], 10)"),
            0
        );
        assert_eq!(
            count("SELECT count(*) FROM recommender.frequently_bought_together(1, 10)"),
            0
        );
        assert_eq!(
            exts("SELECT recommender.homepage_json('anyone', 3)->>'context'"),
            "homepage"
        );
        assert_eq!(count("SELECT jsonb_array_length(recommender.homepage_json('anyone', 3)->'recommendations')"), 0);
    }

    #[pg_test]
    fn json_has_the_response_shape() {
        seed_store();
        let keys = exts("SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(recommender.homepage_json('u_coffee', 2)) k");
        assert_eq!(
            keys,
            "context,generated_at,recommendations,request_id,user_id"
        );
        let item = exts("SELECT string_agg(k, ',' ORDER BY k) FROM jsonb_object_keys(recommender.homepage_json('u_coffee', 2)->'recommendations'->0) k");
        assert_eq!(
            item,
            "category,external_product_id,image_url,name,position,price,product_id,score"
        );
        assert_eq!(count("SELECT jsonb_array_length(recommender.cart_json('u_coffee', 3)->'recommendations')"), 3);
    }

    #[pg_test]
    fn cross_encoder_matches_reference() {
        Spi::run(&format!(
            "SET recommender.cross_encoder_dir = '{}'",
            test_cross_encoder_dir()
        ))
        .unwrap();
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
            let want = crate::core::scoring::sigmoid(p["logit"].as_f64().unwrap());
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

    #[pg_test]
    fn rerank_without_cross_encoder_uses_the_bi_encoder() {
        Spi::run("SET recommender.cross_encoder_dir = '/nonexistent'").unwrap();
        let order = exts(
            "SELECT string_agg(index::text || ':' || reranker, ',' ORDER BY score DESC)
               FROM recommender.rerank('coffee beans', ARRAY['running shoes', NULL, 'fresh roasted coffee beans'])",
        );
        assert_eq!(order, "3:bi-encoder,1:bi-encoder");
    }

    #[pg_test]
    fn deferred_mode_queues_and_the_batch_function_embeds() {
        Spi::run("SET recommender.embedding_mode = deferred").unwrap();
        Spi::run(
            "INSERT INTO recommender.products (external_id, name, category) VALUES ('q-1', 'Queued kettle', 'Kitchen')",
        )
        .unwrap();
        assert_eq!(count("SELECT count(*) FROM recommender.embedding_queue"), 1);
        assert_eq!(
            count("SELECT count(*) FROM recommender.products WHERE embedding IS NULL"),
            1
        );
        let (processed, failed) = Spi::get_two::<i32, i32>(
            "SELECT processed, failed FROM recommender._process_queue_batch(NULL)",
        )
        .unwrap();
        assert_eq!((processed, failed), (Some(1), Some(0)));
        assert_eq!(count("SELECT count(*) FROM recommender.embedding_queue"), 0);
        assert_eq!(count("SELECT count(*) FROM recommender.staleness"), 0);
        assert_eq!(
            sqlstate_of("SET recommender.embedding_mode = 'later'"),
            "22023"
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
    fn worker_databases_is_undefined_without_preloading() {
        // defined only while shared_preload_libraries is processed (a server-start setting)
        assert_eq!(
            count("SELECT count(*) FROM pg_settings WHERE name = 'recommender.worker_databases'"),
            0
        );
        assert_eq!(
            Spi::get_one::<String>(
                "SELECT setting FROM pg_settings WHERE name = 'recommender.worker_naptime'"
            )
            .unwrap()
            .unwrap(),
            "1000"
        );
    }
}
