//! `#[pg_test]`s of the SQL surface: embedding functions and their volatility, the catalogue and
//! its sync from an app's table, argument errors and SQLSTATEs, the JSON form, deferred embedding.
#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    use crate::testing::*;

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

    /// Helpers start only for a CALL that can commit (its abort stops them): none from a function
    /// or a statement in a transaction, as here. A bad job is 22023.
    #[pg_test]
    fn embedding_helpers_start_only_for_a_procedure() {
        assert_eq!(
            count("SELECT recommender._start_embedding_helpers('refresh', 10, false, now(), 1)::bigint"),
            0
        );
        assert_eq!(
            count(
                "SELECT recommender._start_embedding_helpers('queue', 10, false, NULL, 1)::bigint"
            ),
            0
        );
        assert!(
            Spi::get_one::<bool>("SELECT recommender._wait_embedding_helpers(0)")
                .unwrap()
                .unwrap()
        );
        for bad in [
            "SELECT recommender._start_embedding_helpers('other', 10, false, now(), 1)",
            "SELECT recommender._start_embedding_helpers('refresh', 0, false, now(), 1)",
            "SELECT recommender._start_embedding_helpers('refresh', 10, false, NULL, 1)",
        ] {
            assert_eq!(sqlstate_of(bad), "22023", "{bad}");
        }
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

    /// The Rust statements write the stale condition out (`api::catalog::STALE`); the SQL units
    /// call recommender._stale. Both say the same of every combination of NULL, equal and other
    /// hashes, with and without an embedding, and the planner still uses the partial index.
    #[pg_test]
    fn stale_condition_is_the_sql_helper() {
        let sql = format!(
            "SELECT count(*) FROM (VALUES (NULL::vector, NULL::bytea, NULL::bytea),
                    ('[1,0]'::vector, NULL, NULL), ('[1,0]', '\\x01', NULL), ('[1,0]', NULL, '\\x01'),
                    ('[1,0]', '\\x01', '\\x01'), ('[1,0]', '\\x01', '\\x02'), (NULL, '\\x01', '\\x01'))
                    AS t(embedding, embedded_hash, text_hash)
              WHERE recommender._stale(embedding, embedded_hash, text_hash) IS DISTINCT FROM {}",
            crate::api::catalog::STALE
        );
        assert_eq!(count(&sql), 0);
        assert_eq!(
            count(
                "SELECT count(*) FROM (VALUES ('[1,0]'::vector, '\\x01'::bytea, '\\x01'::bytea),
                        (NULL, '\\x01', '\\x01'), ('[1,0]', '\\x01', '\\x02')) AS t(e, a, b)
                  WHERE recommender._stale(e, a, b)"
            ),
            2
        );
        Spi::run(
            "SET LOCAL enable_seqscan = off;
             CREATE FUNCTION pg_temp.plan(q text) RETURNS text LANGUAGE plpgsql AS $f$
             DECLARE r text; o text := ''; BEGIN
                 FOR r IN EXECUTE 'EXPLAIN ' || q LOOP o := o || r || ' '; END LOOP; RETURN o;
             END $f$",
        )
        .unwrap();
        let plan = Spi::get_one::<String>(
            "SELECT pg_temp.plan('SELECT product_id FROM recommender.products
                                   WHERE recommender._stale(embedding, embedded_hash, text_hash)')",
        )
        .unwrap()
        .unwrap();
        assert!(plan.contains("products_stale"), "{plan}");
    }

    /// The dimension is written in the SQL's DDL (`vector(384)`): every vector column and the
    /// embed() functions' casts (a function's result type keeps no typmod) agree with
    /// `model::DIM`, the one constant the Rust side reads.
    #[pg_test]
    fn every_vector_in_the_schema_has_the_models_dimension() {
        let dim = crate::model::DIM as i64;
        assert_eq!(
            count(
                "SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                  WHERE c.relnamespace = 'recommender'::regnamespace AND c.relkind = 'r'
                    AND format_type(a.atttypid, NULL) LIKE '%vector' AND NOT a.attisdropped"
            ),
            3
        );
        assert_eq!(
            count(&format!(
                "SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                  WHERE c.relnamespace = 'recommender'::regnamespace AND c.relkind = 'r'
                    AND format_type(a.atttypid, NULL) LIKE '%vector' AND a.atttypmod <> {dim}"
            )),
            0
        );
        // embed() names no type since 0.16.0 (its path names no schema): the model's output is
        // checked against DIM in Rust, and both forms give vectors of that dimension.
        assert_eq!(
            count("SELECT vector_dims(recommender.embed('a text'))::bigint"),
            dim
        );
        assert_eq!(
            count(&format!(
                "SELECT count(*) FROM unnest(recommender.embed(ARRAY['a', 'b c'])) v
                  WHERE vector_dims(v) <> {dim}"
            )),
            0
        );
    }

    /// recommender._setting reads the extension's own settings, with the library's defaults, and
    /// nothing else.
    #[pg_test]
    fn setting_reads_only_recommender_settings() {
        assert_eq!(
            Spi::get_one::<String>(
                "SELECT recommender._setting('recommender.queue_retry_seconds')"
            )
            .unwrap()
            .as_deref(),
            Some("30s")
        );
        assert_eq!(
            Spi::get_one::<String>("SELECT recommender._setting('recommender.no_such_thing')")
                .unwrap(),
            None
        );
        assert_eq!(
            sqlstate_of("SELECT recommender._setting('data_directory')"),
            "22023"
        );
        assert_eq!(
            count("SELECT recommender._max_array()::bigint"),
            recommender_core::limits::MAX_ARRAY as i64
        );
    }
}
