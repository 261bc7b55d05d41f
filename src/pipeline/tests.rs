//! `#[pg_test]`s of the pipeline, on a store whose right answers are known by construction
//! (`testing::seed_store`): every context, the rules, weights, the clock, profiles and aggregates.
#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    use crate::testing::*;

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
        Spi::run("SET recommender.homepage_weight_content = 0; SET recommender.homepage_weight_collaborative = 0; SET recommender.homepage_weight_popularity = 1; SET recommender.enable_rerank = off").unwrap();
        // c1 is the most popular product in the window (3 purchases)
        assert_eq!(
            exts("SELECT external_product_id FROM recommender.homepage('u_coffee', 1)"),
            "c1"
        );
        Spi::run("SET recommender.homepage_weight_content = 1; SET recommender.homepage_weight_popularity = 0; SET recommender.new_arrival_boost = 0")
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

    /// A view leaves the user's purchases as they were: the profile is rebuilt but the
    /// collaborative candidates (here from the item model) are kept, and the homepage equals one
    /// computed from scratch. A purchase recomputes them.
    #[pg_test]
    fn collaborative_candidates_survive_interactions_that_are_not_purchases() {
        seed_store();
        Spi::run("CALL recommender.build_item_model(lambda => 1)").unwrap();
        let q = "SELECT string_agg(product_id || ':' || round(score::numeric, 6) || ':' || sources, ',' ORDER BY position)
                   FROM recommender.homepage('u_coffee', 8)";
        let computed_at = || {
            exts("SELECT collab_at::text || '/' || interaction_count FROM recommender.user_profiles WHERE user_id = 'u_coffee'")
        };
        let first = exts(q);
        assert!(first.contains("item_model"), "{first}");
        let before = computed_at();
        let track = |t: &str, ext: &str| {
            Spi::run(&format!(
                "SELECT recommender.track('u_coffee', product_id, '{t}', occurred_at => '2024-02-25')
                   FROM recommender.products WHERE external_id = '{ext}'"
            ))
            .unwrap()
        };
        track("VIEW", "k3");
        let after_view = exts(q);
        let kept = computed_at();
        // rebuilt (one more interaction), candidates of the same computation
        assert_ne!(kept, before);
        assert_eq!(kept.split('/').next(), before.split('/').next());
        Spi::run("DELETE FROM recommender.user_profiles").unwrap();
        assert_eq!(exts(q), after_view);
        // a purchase changes what they read: recomputed
        let fresh = exts(
            "SELECT collab_at::text FROM recommender.user_profiles WHERE user_id = 'u_coffee'",
        );
        track("PURCHASE", "t1");
        exts(q);
        assert_ne!(
            exts(
                "SELECT collab_at::text FROM recommender.user_profiles WHERE user_id = 'u_coffee'"
            ),
            fresh
        );
        // another decay_days weighs the same purchases otherwise (repeat): recomputed too, and
        // equal to a homepage computed from scratch under it
        let before = computed_at();
        Spi::run("SET recommender.decay_days = 7").unwrap();
        let decayed = exts(q);
        assert_ne!(computed_at(), before);
        Spi::run("DELETE FROM recommender.user_profiles").unwrap();
        assert_eq!(exts(q), decayed);
    }

    /// Collaborative candidates that only the item model and repeat supplied are reused past
    /// `collaborative_cache_seconds` until the model is built again; candidates of similar users
    /// or co-purchase are not (other users' new interactions change them).
    #[pg_test]
    fn item_model_candidates_outlive_the_cache_seconds_until_the_next_build() {
        seed_store();
        let q = "SELECT string_agg(product_id || ':' || round(score::numeric, 6) || ':' || sources, ',' ORDER BY position)
                   FROM recommender.homepage('u_coffee', 8)";
        let at = || {
            exts(
                "SELECT collab_at::text || '/' || coalesce(collab_model::text, 'none')
                    FROM recommender.user_profiles WHERE user_id = 'u_coffee'",
            )
        };
        let age = || {
            Spi::run(
                "UPDATE recommender.user_profiles SET collab_at = collab_at - interval '1 hour'",
            )
            .unwrap()
        };
        // no item model: the other explore sources, recomputed once the seconds have passed
        let first = exts(q);
        assert!(!first.contains("item_model"), "{first}");
        assert!(at().ends_with("/none"), "{}", at());
        age();
        let old = at();
        assert_eq!(exts(q), first);
        assert_ne!(at(), old);

        // built: the list above is still fresh, then recomputed with the model
        Spi::run("CALL recommender.build_item_model(lambda => 1)").unwrap();
        age();
        let first = exts(q);
        assert!(first.contains("item_model"), "{first}");
        let build = exts("SELECT max(build_id)::text FROM recommender.item_model_builds");
        assert!(at().ends_with(&format!("/{build}")), "{} {build}", at());
        // an hour later: the same list, not recomputed
        age();
        let old = at();
        assert_eq!(exts(q), first);
        assert_eq!(at(), old);
        // equal to one computed from scratch
        Spi::run("UPDATE recommender.user_profiles SET collab_ids = NULL").unwrap();
        assert_eq!(exts(q), first);
        // 0 seconds still means every call
        Spi::run("SET recommender.collaborative_cache_seconds = 0").unwrap();
        let old = at();
        assert_eq!(exts(q), first);
        assert_ne!(at(), old);
        Spi::run("RESET recommender.collaborative_cache_seconds").unwrap();
        // the next build: recomputed, with its build
        age();
        let old = at();
        Spi::run("CALL recommender.build_item_model(lambda => 1)").unwrap();
        exts(q);
        let build = exts("SELECT max(build_id)::text FROM recommender.item_model_builds");
        assert_ne!(at(), old);
        assert!(at().ends_with(&format!("/{build}")), "{} {build}", at());
    }

    /// `recommender.item_model_recency` weighs the item model's sum by recency rank: u_coffee
    /// bought c1 (2024-02-01), then c2 (2024-02-10); c1 links to t2 by 1.0, c2 to k4 by 0.6. The
    /// whole history alike ranks t2 first; with recency 1, c1 counts exp(-1) and k4 comes first.
    /// A change of the setting recomputes the candidates kept with the profile.
    #[pg_test]
    fn item_model_recency_weighs_the_latest_purchases() {
        seed_store();
        Spi::run(
            "INSERT INTO recommender.item_model
             SELECT a.product_id, ARRAY[b.product_id], ARRAY[v.s]::real[]
               FROM (VALUES ('c1', 't2', 1.0), ('c2', 'k4', 0.6)) v(a, b, s)
               JOIN recommender.products a ON a.external_id = v.a
               JOIN recommender.products b ON b.external_id = v.b",
        )
        .unwrap();
        let source = || {
            crate::pipeline::candidates::item_model::of_user("u_coffee", 5)
                .unwrap()
                .into_iter()
                .map(|(id, s)| {
                    let ext = exts(&format!(
                        "SELECT external_id FROM recommender.products WHERE product_id = {id}"
                    ));
                    format!("{ext}:{s:.4}")
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(source(), ["t2:1.0000", "k4:0.6000"]);
        let q = "SELECT string_agg(product_id || ':' || round(score::numeric, 6) || ':' || sources, ',' ORDER BY position)
                   FROM recommender.homepage('u_coffee', 8)";
        let collab_at = || {
            exts("SELECT collab_at::text FROM recommender.user_profiles WHERE user_id = 'u_coffee'")
        };
        let whole = exts(q);
        let before = collab_at();
        Spi::run("SET recommender.item_model_recency = 1").unwrap();
        assert_eq!(source(), ["k4:0.6000", "t2:0.3679"]);
        let recent = exts(q);
        assert_ne!(collab_at(), before);
        assert_ne!(recent, whole);
        // equal to a homepage computed from scratch under it, and back
        Spi::run("DELETE FROM recommender.user_profiles").unwrap();
        assert_eq!(exts(q), recent);
        Spi::run("RESET recommender.item_model_recency").unwrap();
        assert_eq!(exts(q), whole);
    }

    /// A profile updated with a user's new interactions equals the profile rebuilt from all of
    /// them: preference (cosine), categories and their weights, price range, and the homepage.
    /// A deleted interaction, `profile_rebuild_seconds` passed, or an interaction edited in place
    /// makes a full rebuild.
    #[pg_test]
    fn a_profile_updated_with_new_interactions_equals_one_rebuilt() {
        seed_store();
        let q = "SELECT string_agg(product_id || ':' || round(score::numeric, 4) || ':' || sources, ',' ORDER BY position)
                   FROM recommender.homepage('u_coffee', 8)";
        let track = |t: &str, ext: &str, at: &str| {
            Spi::run(&format!(
                "SELECT recommender.track('u_coffee', product_id, '{t}', occurred_at => '{at}')
                   FROM recommender.products WHERE external_id = '{ext}'"
            ))
            .unwrap()
        };
        let stored = || {
            let pref = Spi::get_one::<Vec<f32>>(
                "SELECT preference::real[] FROM recommender.user_profiles WHERE user_id = 'u_coffee'",
            )
            .unwrap()
            .unwrap();
            let rest = exts(
                "SELECT concat_ws('|', top_categories::text, price_min, price_max, interaction_count,
                        (SELECT string_agg(c || '=' || round(w::numeric, 9), ',')
                           FROM unnest(categories, category_weights) AS x(c, w)))
                   FROM recommender.user_profiles WHERE user_id = 'u_coffee'",
            );
            (pref, rest)
        };
        exts(q);
        let built_at =
            exts("SELECT full_at::text FROM recommender.user_profiles WHERE user_id = 'u_coffee'");
        // a view, a cart add (milk: a new category), a purchase, one of them older than the newest
        track("VIEW", "k3", "2024-02-25");
        track("CART_ADD", "m1", "2024-02-26");
        track("PURCHASE", "t1", "2024-02-15");
        let updated_page = exts(q);
        let (updated, updated_rest) = stored();
        assert!(updated_rest.contains("Dairy"), "{updated_rest}");
        assert_eq!(
            exts("SELECT full_at::text FROM recommender.user_profiles WHERE user_id = 'u_coffee'"),
            built_at
        );
        // the same from scratch
        assert_eq!(
            count("SELECT recommender.rebuild_user_profile('u_coffee')"),
            6
        );
        let (rebuilt, rebuilt_rest) = stored();
        let cos = recommender_core::pooling::cosine(&updated, &rebuilt);
        assert!(cos > 0.99999, "cosine {cos}");
        assert_eq!(updated_rest, rebuilt_rest);
        Spi::run("DELETE FROM recommender.user_profiles").unwrap();
        assert_eq!(exts(q), updated_page);
        // the update reads the stored sums: with them emptied, only the new interaction counts ...
        let embedding = |ext: &str| {
            Spi::get_one::<Vec<f32>>(&format!(
                "SELECT embedding::real[] FROM recommender.products WHERE external_id = '{ext}'"
            ))
            .unwrap()
            .unwrap()
        };
        // the refreshed preference's cosine to the product of a new view
        let towards_view = |ext: &str, at: &str| {
            track("VIEW", ext, at);
            exts(q);
            recommender_core::pooling::cosine(&stored().0, &embedding(ext))
        };
        let forget = || Spi::run("UPDATE recommender.user_profiles SET pref_norm = 0").unwrap();
        forget();
        assert!(towards_view("m2", "2024-02-27") > 0.99999);
        // ... and a deleted interaction, the rebuild interval passed, or an interaction edited in
        // place (the sums hold the old row) rebuilds from all of them
        Spi::run(
            "DELETE FROM recommender.interactions WHERE interaction_id =
               (SELECT min(interaction_id) FROM recommender.interactions WHERE user_id = 'u_coffee')",
        )
        .unwrap();
        forget();
        assert!(towards_view("m2", "2024-02-28") < 0.999);
        Spi::run("SET recommender.profile_rebuild_seconds = 0").unwrap();
        forget();
        assert!(towards_view("m2", "2024-02-28") < 0.999);
        Spi::run("RESET recommender.profile_rebuild_seconds").unwrap();
        forget();
        Spi::run("UPDATE recommender.interactions SET type = 'CART_ADD' WHERE user_id = 'u_coffee' AND type = 'VIEW'")
            .unwrap();
        // the UPDATE keeps the key (count, newest id): the next call rebuilds all the same, with
        // no new interaction (0.21.0)
        let rebuilt_now = "SELECT (weights_version IS NOT NULL AND full_at IS NOT NULL)::text
                             FROM recommender.user_profiles WHERE user_id = 'u_coffee'";
        assert_eq!(exts(rebuilt_now), "false");
        exts(q);
        assert_eq!(exts(rebuilt_now), "true");
        let (edited, _) = stored();
        assert!(count("SELECT recommender.rebuild_user_profile('u_coffee')") > 0);
        let cos = recommender_core::pooling::cosine(&edited, &stored().0);
        assert!(cos > 0.99999, "cosine {cos}");
        assert!(towards_view("m1", "2024-02-29") < 0.999);
        // a row with an id below the stored newest that enters the key (here an interaction after
        // the clock, which moves past it): the rows read are not the key's, so it rebuilds
        Spi::run(
            "INSERT INTO recommender.interactions (user_id, product_id, type, occurred_at)
             SELECT 'u_coffee', product_id, 'VIEW', '2024-03-05' FROM recommender.products WHERE external_id = 'a1'",
        )
        .unwrap();
        track("VIEW", "m2", "2024-02-29");
        exts(q);
        forget();
        Spi::run("SET recommender.as_of = '2024-03-10'").unwrap();
        exts(q);
        let (moved, _) = stored();
        assert!(count("SELECT recommender.rebuild_user_profile('u_coffee')") > 0);
        let cos = recommender_core::pooling::cosine(&moved, &stored().0);
        assert!(cos > 0.99999, "cosine {cos}");
    }

    /// Past `profile_rebuild_seconds`, a refresh checks the interactions and products the running
    /// sums were made from: all unchanged, it updates the sums (equal to a rebuild) and restarts
    /// the interval; a product whose category, price or embedding changed since, or a changed
    /// interaction, makes a full rebuild.
    #[pg_test]
    fn a_refresh_after_the_interval_rebuilds_only_when_an_input_changed() {
        seed_store();
        let q = "SELECT count(*) FROM recommender.homepage('u_coffee', 8)";
        let col = |c: &str| {
            exts(&format!(
                "SELECT ({c})::text FROM recommender.user_profiles WHERE user_id = 'u_coffee'"
            ))
        };
        let view = |ext: &str, at: &str| {
            Spi::run(&format!(
                "SELECT recommender.track('u_coffee', product_id, 'VIEW', occurred_at => '{at}')
                   FROM recommender.products WHERE external_id = '{ext}'"
            ))
            .unwrap();
            count(q);
        };
        // the last full rebuild two hours ago, and a marker among the stored category weights
        // that only a rebuild drops
        let age_and_mark = || {
            Spi::run(
                "UPDATE recommender.user_profiles
                    SET full_at = now() - interval '2 hours', categories = categories || 'Marker'::text,
                        category_weights = category_weights || 1e-12::float8
                  WHERE user_id = 'u_coffee'",
            )
            .unwrap()
        };
        let marked = || col("categories").contains("Marker");
        let restarted = || col("full_at = now()") == "true";
        let preference = || {
            Spi::get_one::<Vec<f32>>(
                "SELECT preference::real[] FROM recommender.user_profiles WHERE user_id = 'u_coffee'",
            )
            .unwrap()
            .unwrap()
        };
        count(q);
        assert_ne!(col("sums_check"), "");
        // nothing changed: updated, the interval restarted, the check and the preference those
        // of a rebuild
        age_and_mark();
        view("m1", "2024-02-25");
        assert!(marked() && restarted());
        let (check, updated) = (col("sums_check"), preference());
        assert_eq!(
            count("SELECT recommender.rebuild_user_profile('u_coffee')"),
            4
        );
        assert!(!marked());
        assert_eq!(col("sums_check"), check);
        let cos = recommender_core::pooling::cosine(&updated, &preference());
        assert!(cos > 0.99999, "cosine {cos}");
        // within the interval the products are not read: updated, the interval kept
        Spi::run(
            "UPDATE recommender.user_profiles SET full_at = now() - interval '1 minute',
                    categories = categories || 'Marker'::text, category_weights = category_weights || 1e-12::float8
              WHERE user_id = 'u_coffee'",
        )
        .unwrap();
        view("t2", "2024-02-26");
        assert!(marked() && !restarted());
        // a product's category changed (its text hash with it): rebuilt, with the new category
        age_and_mark();
        Spi::run("UPDATE recommender.products SET category = 'Beans' WHERE external_id = 'c1'")
            .unwrap();
        view("m2", "2024-02-27");
        assert!(!marked() && restarted());
        assert!(col("categories").contains("Beans"));
        // a price changed within its band (the embedded text, and so the text hash, unchanged):
        // rebuilt, with the new price range
        age_and_mark();
        let text = "SELECT text_hash::text FROM recommender.products WHERE external_id = 'm1'";
        let before = exts(text);
        Spi::run("UPDATE recommender.products SET price = 1.1 WHERE external_id = 'm1'").unwrap();
        assert_eq!(exts(text), before);
        view("a2", "2024-02-27");
        assert!(!marked() && restarted());
        assert_eq!(col("price_min"), "1.1");
        // a product embedded again (another model, an hour later): rebuilt
        age_and_mark();
        Spi::run(
            "UPDATE recommender.products
                SET embedding = (SELECT embedding FROM recommender.products WHERE external_id = 'a1'),
                    embedded_at = embedded_at + interval '1 hour'
              WHERE external_id = 'c2'",
        )
        .unwrap();
        view("k2", "2024-02-28");
        assert!(!marked() && restarted());
        let rebuilt = preference();
        assert_eq!(
            count("SELECT recommender.rebuild_user_profile('u_coffee')"),
            8
        );
        let cos = recommender_core::pooling::cosine(&rebuilt, &preference());
        assert!(cos > 0.99999, "cosine {cos}");
        // a description changed: embedded again in this transaction (the same embedding time,
        // another text hash), rebuilt
        age_and_mark();
        let embedded = "SELECT embedded_at::text || encode(embedded_hash, 'hex') FROM recommender.products WHERE external_id = 'c3'";
        let before = exts(embedded);
        Spi::run("UPDATE recommender.products SET description = 'Washed, single origin' WHERE external_id = 'c3'")
            .unwrap();
        assert_ne!(exts(embedded), before);
        view("k4", "2024-02-28");
        assert!(!marked() && restarted());
        // an interaction changed whose mark on the profile was lost (the same key, the same
        // products; the mark's version restored too): rebuilt by the check
        age_and_mark();
        let version = col("weights_version");
        Spi::run(
            "UPDATE recommender.interactions SET type = 'CART_ADD'
              WHERE user_id = 'u_coffee' AND product_id = (SELECT product_id FROM recommender.products WHERE external_id = 'm1')",
        )
        .unwrap();
        age_and_mark();
        Spi::run(&format!(
            "UPDATE recommender.user_profiles SET weights_version = '{version}' WHERE user_id = 'u_coffee'"
        ))
        .unwrap();
        view("k1", "2024-02-28");
        assert!(!marked() && restarted());
        // sums without a check (stored by 0.18.0) are rebuilt
        age_and_mark();
        Spi::run("UPDATE recommender.user_profiles SET sums_check = NULL").unwrap();
        view("c5", "2024-02-28");
        assert!(!marked() && restarted());
    }

    /// Popularity is read from this backend's copy of `popular_cache`: equal to summing the
    /// window, up to 5 minutes old, and copied again once the table holds another computation.
    #[pg_test]
    fn popularity_is_read_from_the_cache_and_follows_it() {
        use crate::pipeline::candidates::popular;
        seed_store();
        let (c1, k4) = (id_of("c1"), id_of("k4"));
        // no cache yet: summed from product_daily
        let direct = popular::of(&[c1, k4]).unwrap();
        assert!(direct[&c1] > 0.0 && !direct.contains_key(&k4));
        assert_eq!(popular::top(3, true).unwrap()[0].0, c1);
        assert!(count("SELECT count(*) FROM recommender.popular_cache") > 0);
        assert_eq!(popular::of(&[c1, k4]).unwrap(), direct);
        // a new purchase of k4: the cached sums stand for up to 5 minutes ...
        Spi::run(
            "INSERT INTO recommender.interactions (user_id, product_id, type, occurred_at)
             SELECT 'u_new', product_id, 'PURCHASE', '2024-02-28' FROM recommender.products WHERE external_id = 'k4'",
        )
        .unwrap();
        assert!(!popular::of(&[k4]).unwrap().contains_key(&k4));
        // ... and a new computation replaces them in this backend's copy too
        Spi::run("DELETE FROM recommender.popular_cache").unwrap();
        assert!(popular::top(20, true).unwrap().iter().any(|p| p.0 == k4));
        let after = popular::of(&[c1, k4]).unwrap();
        assert!(after[&k4] > 0.0);
        assert_eq!(after[&c1], direct[&c1]);
        // a stale cache is never read: a caller that may not store sums product_daily ...
        Spi::run("UPDATE recommender.popular_cache SET computed_at = computed_at - interval '1 hour', score = 0").unwrap();
        assert_eq!(popular::of(&[c1, k4]).unwrap(), after);
        // ... and one that may replaces it
        assert_eq!(popular::top(1, true).unwrap()[0], (c1, direct[&c1]));
    }

    /// With `recommender.share_popularity` off a session sums popularity itself (once per
    /// transaction): the same figures, and the shared cache is neither read nor written.
    #[pg_test]
    fn popularity_can_be_kept_out_of_the_shared_cache() {
        use crate::pipeline::candidates::popular;
        seed_store();
        let (c1, k4) = (id_of("c1"), id_of("k4"));
        let direct = popular::of(&[c1, k4]).unwrap();
        Spi::run("SET LOCAL recommender.share_popularity = off").unwrap();
        // a fresh shared cache that says otherwise is not read ...
        Spi::run(
            "INSERT INTO recommender.popular_cache (clock_day, window_days, product_id, score, computed_at)
             SELECT recommender.clock()::date, 30, product_id, 1000, clock_timestamp()
               FROM recommender.products WHERE external_id = 'k4'",
        )
        .unwrap();
        assert_eq!(popular::of(&[c1, k4]).unwrap(), direct);
        assert_eq!(popular::top(1, true).unwrap()[0], (c1, direct[&c1]));
        // ... nor written
        assert_eq!(count("SELECT count(*) FROM recommender.popular_cache"), 1);
        Spi::run("SET LOCAL recommender.share_popularity = on").unwrap();
        assert_eq!(popular::of(&[k4]).unwrap()[&k4], 1000.0);
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

    /// Inserts, deletes and updates leave the aggregates equal to a rebuild from the
    /// interactions, user_products' first and last times included (0.7.0: a removal recomputes
    /// them, and a pair with nothing left goes).
    #[pg_test]
    fn aggregates_match_a_full_rebuild() {
        seed_store();
        let c1_last = "SELECT last_at::date::text FROM recommender.user_products
                        WHERE user_id = 'u_coffee' AND product_id = (SELECT product_id FROM recommender.products WHERE external_id = 'c1')";
        Spi::run("INSERT INTO recommender.interactions (user_id, product_id, type, basket_id, occurred_at)
                  SELECT 'u_coffee', product_id, 'PURCHASE', 'b_late', '2024-02-25' FROM recommender.products WHERE external_id = 'c1'").unwrap();
        assert_eq!(exts(c1_last), "2024-02-25");
        Spi::run("DELETE FROM recommender.interactions WHERE basket_id = 'b_late'").unwrap();
        assert_eq!(exts(c1_last), "2024-02-01");
        Spi::run("DELETE FROM recommender.interactions WHERE user_id = 'u_other2' AND product_id = (SELECT product_id FROM recommender.products WHERE external_id = 'm1')").unwrap();
        assert_eq!(
            count("SELECT count(*) FROM recommender.user_products WHERE user_id = 'u_other2' AND product_id = (SELECT product_id FROM recommender.products WHERE external_id = 'm1')"),
            0
        );
        Spi::run("UPDATE recommender.interactions SET basket_id = 'b1' WHERE basket_id = 'b2'")
            .unwrap();
        Spi::run("UPDATE recommender.interactions SET occurred_at = occurred_at - interval '3 days' WHERE user_id = 'u_audio'")
            .unwrap();
        let snap = "SELECT md5(string_agg(x, ';' ORDER BY x)) FROM (
                      SELECT format('d%s/%s/%s/%s', product_id, day, weight, purchases) x FROM recommender.product_daily WHERE weight <> 0 OR purchases <> 0
                      UNION ALL SELECT format('u%s/%s/%s/%s/%s/%s', user_id, product_id, weight, purchases, first_at, last_at) FROM recommender.user_products
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

    /// The repeat source: a user's own re-bought products come back, the most often and most
    /// recently re-bought first, named `repeat` in `sources`; never with enable_repurchase off.
    #[pg_test]
    fn repeat_buyer_gets_the_products_bought_again_and_again() {
        seed_repeat_buyer();
        let rows = exts(
            "SELECT string_agg(external_product_id || '=' || sources, ';' ORDER BY position)
               FROM recommender.homepage('u_milk', 16)",
        );
        let pos = |ext: &str| {
            rows.split(';')
                .position(|r| r.starts_with(&format!("{ext}=")))
        };
        let (m2, a3) = (pos("m2"), pos("a3"));
        assert!(m2.is_some() && a3.is_some(), "{rows}");
        assert!(
            m2 < a3,
            "bought in 4 baskets ranks above bought once long ago: {rows}"
        );
        assert!(
            rows.split(';')
                .find(|r| r.starts_with("m2="))
                .is_some_and(|r| r.contains("repeat")),
            "{rows}"
        );
        Spi::run("SET recommender.enable_repurchase = off").unwrap();
        let rows = exts(
            "SELECT string_agg(external_product_id, ',' ORDER BY position) FROM recommender.homepage('u_milk', 16)",
        );
        for bought in ["m2", "a3", "t2"] {
            assert!(!rows.split(',').any(|r| r == bought), "{bought} in {rows}");
        }
    }

    /// recommender.repeat_share weighs the user's own repeat purchases against what other users
    /// suggest, instead of a maximum that ranks both lists' tops alike: at 1 the products bought
    /// again come first in repeat order, at 0 the collaborative signal is explore alone. The
    /// store's bestsellers are candidates too (`popular` in `sources`).
    #[pg_test]
    fn repeat_share_weighs_buying_again_against_exploring() {
        seed_repeat_buyer();
        Spi::run(
            "SET recommender.homepage_weight_content = 0; SET recommender.homepage_weight_popularity = 0;
             SET recommender.homepage_weight_collaborative = 1; SET recommender.enable_rerank = off;
             SET recommender.new_arrival_boost = 0; SET recommender.max_per_category = 100",
        )
        .unwrap();
        let top = |share: &str| {
            Spi::run(&format!("SET recommender.repeat_share = {share}")).unwrap();
            exts(
                "SELECT string_agg(external_product_id || '=' || round(collaborative_score::numeric, 3), ',' ORDER BY position)
                   FROM recommender.homepage('u_milk', 16)",
            )
        };
        // all repeat: m2 (4 baskets) first at 1.0, then t2 (bought recently) before a3 (long ago)
        let all_repeat = top("1");
        assert!(all_repeat.starts_with("m2=1.000,t2="), "{all_repeat}");
        let pos = |ext: &str| all_repeat.find(&format!("{ext}="));
        assert!(pos("a3").is_some() && pos("t2") < pos("a3"), "{all_repeat}");
        // no repeat: the user's own products carry only what other users suggest, and the explore
        // sources never suggest a user's own recent products
        top("0");
        assert_eq!(
            exts(
                "SELECT max(collaborative_score)::text FROM recommender.homepage('u_milk', 16)
                  WHERE external_product_id IN ('m2', 't2', 'a3')"
            ),
            "0"
        );
        // bestsellers are candidates: c1 (3 buyers) is found though no source of this user names it
        assert!(exts(
            "SELECT coalesce(string_agg(sources, ';'), '') FROM recommender.homepage('u_milk', 16) WHERE external_product_id = 'c1'"
        )
        .contains("popular"));
    }

    /// `give_way::store`: a stored write is kept; a write that meets another transaction's lock
    /// (55P03, as lock_timeout raises it) is undone and the call goes on; any other error is
    /// raised; the session's lock_timeout is the same afterwards either way.
    #[pg_test]
    fn cache_writes_give_way_instead_of_waiting() {
        use crate::pipeline::give_way::store;
        Spi::run("CREATE TEMP TABLE give_way_t (v int); SET lock_timeout = '2s'").unwrap();
        let write = |v: i32, raise: Option<&str>| {
            let v = v.to_string();
            let raise = raise
                .map(|c| format!("DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '{c}'; END $$"));
            move || {
                Spi::run(&format!("INSERT INTO give_way_t SELECT {v} WHERE current_setting('lock_timeout') = '10ms'"))?;
                if let Some(r) = &raise {
                    Spi::run(r)?;
                }
                Ok::<_, pgrx::spi::SpiError>(())
            }
        };
        assert_eq!(store(write(1, None)), Ok(true));
        assert_eq!(store(write(2, Some("lock_not_available"))), Ok(false));
        assert_eq!(store(write(3, Some("serialization_failure"))), Ok(false));
        assert_eq!(exts("SELECT string_agg(v::text, ',') FROM give_way_t"), "1");
        assert_eq!(exts("SELECT current_setting('lock_timeout')"), "2s");
        // a shorter lock_timeout of the session is kept inside
        Spi::run("SET lock_timeout = '5ms'").unwrap();
        assert_eq!(
            store(|| Spi::run(
                "INSERT INTO give_way_t SELECT 4 WHERE current_setting('lock_timeout') = '5ms'"
            )),
            Ok(true)
        );
        assert_eq!(
            exts("SELECT string_agg(v::text, ',' ORDER BY v) FROM give_way_t"),
            "1,4"
        );
        // another error is raised, the subtransaction's writes undone
        let raised = PgTryBuilder::new(|| store(write(5, Some("22012"))).is_ok())
            .catch_others(|e| match e {
                pg_sys::panic::CaughtError::PostgresError(r) => {
                    assert_eq!(r.sql_error_code(), PgSqlErrorCode::ERRCODE_DIVISION_BY_ZERO);
                    false
                }
                other => panic!("{other:?}"),
            })
            .execute();
        assert!(!raised);
        assert_eq!(exts("SELECT current_setting('lock_timeout')"), "5ms");
        assert_eq!(
            exts("SELECT string_agg(v::text, ',' ORDER BY v) FROM give_way_t"),
            "1,4"
        );
    }

    /// A batch of homepage calls in one transaction takes a subtransaction for a user's first
    /// profile only (`profile::store_row`): rewriting stored profiles and their collaborative
    /// candidates locks the rows without one. Counted where Postgres shows it (16 and later).
    #[pg_test]
    fn a_batch_of_calls_rewrites_profiles_without_subtransactions() {
        seed_store();
        if count("SELECT current_setting('server_version_num')::int") < 160000 {
            return;
        }
        let subtransactions = || {
            Spi::run("SELECT pg_stat_clear_snapshot()").unwrap();
            count(
                "SELECT s.subxact_count FROM pg_stat_get_backend_idset() b
                  CROSS JOIN LATERAL pg_stat_get_backend_subxact(b) s
                  WHERE pg_stat_get_backend_pid(b) = pg_backend_pid()",
            )
        };
        let batch =
            "SELECT count(*) FROM (SELECT DISTINCT user_id FROM recommender.interactions) u,
                       LATERAL recommender.homepage(u.user_id, 5) h";
        let users = count("SELECT count(DISTINCT user_id) FROM recommender.interactions");
        let before = subtransactions();
        Spi::run(batch).unwrap();
        let first = subtransactions() - before;
        // one per first profile, one for the day's popularity sums at most
        assert!(
            first <= users + 1,
            "{first} subtransactions for {users} first profiles"
        );
        let profiles = count("SELECT count(*) FROM recommender.user_profiles");
        assert!(
            profiles > 0 && first > 0,
            "{profiles} profiles, {first} subtransactions"
        );
        // every profile rewritten under another key, the collaborative candidates recomputed
        Spi::run("SET recommender.decay_days = 31").unwrap();
        Spi::run("SET recommender.collaborative_cache_seconds = 0").unwrap();
        Spi::run(batch).unwrap();
        assert_eq!(subtransactions() - before, first);
        assert_eq!(
            count(
                "SELECT count(*) FROM recommender.user_profiles WHERE weights_version LIKE '%/31'"
            ),
            profiles
        );
    }

    /// A statement analysed while armed (it names pgvector's schema) after a change to schemas
    /// or operators arrived is refused with 40001; armed with the current count, or not armed,
    /// it runs.
    #[pg_test]
    fn a_statement_naming_vectors_schema_is_refused_when_a_change_lands_in_its_analysis() {
        // on 0.26.0's SQL no kept statement names the schema at all
        seed_store();
        Spi::run("SELECT count(*) FROM recommender.homepage('u_coffee', 5)").unwrap();
        assert!(exts("SELECT count(*)::text FROM recommender.similar_products((SELECT min(product_id) FROM recommender.products), 5)") != "0");
        assert_eq!(crate::pipeline::plans::naming_vector_schema(), 0);
        use crate::pipeline::give_way::store;
        use crate::pipeline::plans::{armed, GENERATION};
        use std::sync::atomic::Ordering;
        let now = GENERATION.load(Ordering::Relaxed);
        assert_eq!(armed(Some(now), || count("SELECT 1 + 1")), 2);
        // refused (40001) inside a subtransaction, which give_way rolls back and reports as not
        // stored
        let run = |seen: u64| store(|| armed(Some(seen), || Spi::run("SELECT 3 + 3")));
        assert_eq!(run(now.wrapping_sub(1)), Ok(false));
        assert_eq!(run(now), Ok(true));
        // disarmed again after the error
        assert_eq!(count("SELECT 4 + 4"), 8);
    }
}
