//! `#[pg_test]`s of the models built from interactions, on `testing::seed_store`: c1 is bought
//! with m1 in two baskets (and with k1 in one); a3 only after the clock.
#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    use crate::testing::*;

    fn strongest_link(ext: &str) -> String {
        Spi::get_one_with_args::<String>(
            "SELECT p.external_id FROM recommender.item_neighbors n
               JOIN recommender.products p ON p.product_id = n.neighbor_id
              WHERE n.product_id = (SELECT product_id FROM recommender.products WHERE external_id = $1)
              ORDER BY n.score DESC, p.external_id LIMIT 1",
            &[ext.into()],
        )
        .unwrap()
        .unwrap_or_default()
    }

    #[pg_test]
    fn item_model_links_products_bought_together_and_feeds_the_homepage() {
        seed_store();
        Spi::run("SET recommender.collaborative_cache_seconds = 0").unwrap();
        let sources = || {
            exts("SELECT coalesce(string_agg(external_product_id || '=' || sources, ';' ORDER BY position), '')
                    FROM recommender.homepage('u_coffee', 16)")
        };
        // no model yet: the source finds nothing, similar users and co-purchase explore
        let before = sources();
        assert!(!before.contains("item_model"), "{before}");
        assert!(before.contains("co_purchase"), "{before}");
        // EASE alone (the adoption model's own test is below)
        Spi::run("CALL recommender.build_item_model(lambda => 1, adoption_weight => 0)").unwrap();
        assert_eq!(strongest_link("c1"), "m1");
        // only purchases at the clock: a3 was bought after it
        assert_eq!(
            count(
                "SELECT count(*) FROM recommender.item_neighbors n JOIN recommender.products p
                     ON p.product_id IN (n.product_id, n.neighbor_id) WHERE p.external_id = 'a3'"
            ),
            0
        );
        // the homepage explores through the model now, and says so
        let after = sources();
        let m1 = after
            .split(';')
            .find(|r| r.starts_with("m1="))
            .unwrap_or_default();
        assert!(m1.contains("item_model"), "{after}");
        assert!(!after.contains("co_purchase"), "{after}");
        // a rebuild replaces the model (the primary key would refuse a second copy)
        let n = count("SELECT count(*) FROM recommender.item_neighbors");
        Spi::run("CALL recommender.build_item_model(lambda => 1)").unwrap();
        assert_eq!(count("SELECT count(*) FROM recommender.item_neighbors"), n);
        // neighbors caps the links per product
        Spi::run("CALL recommender.build_item_model(lambda => 1, neighbors => 1)").unwrap();
        assert_eq!(
            count("SELECT max(c) FROM (SELECT count(*) AS c FROM recommender.item_neighbors GROUP BY product_id) s"),
            1
        );
        // every build is recorded, with its arguments, clock and what it wrote
        assert_eq!(
            count("SELECT count(*) FROM recommender.item_model_builds"),
            3
        );
        assert_eq!(
            count(
                "SELECT count(*) FROM recommender.item_model_builds
                  WHERE build_id = (SELECT max(build_id) FROM recommender.item_model_builds)
                    AND items = 5000 AND lambda = 1 AND neighbors = 1 AND clock = recommender.clock()
                    AND products >= (SELECT count(*) FROM recommender.item_model)
                    AND pairs = (SELECT count(*) FROM recommender.item_neighbors) AND customers > 0"
            ),
            1
        );
    }

    #[pg_test]
    fn item_model_refuses_bad_arguments() {
        for call in [
            "CALL recommender.build_item_model(items => 0)",
            "CALL recommender.build_item_model(items => 10001)",
            "CALL recommender.build_item_model(lambda => 0)",
            "CALL recommender.build_item_model(lambda => 'NaN')",
            "CALL recommender.build_item_model(lambda => '-Infinity')",
            "CALL recommender.build_item_model(lambda => 1e10)",
            "CALL recommender.build_item_model(neighbors => 0)",
            "CALL recommender.build_item_model(neighbors => NULL)",
            "CALL recommender.build_item_model(adoption_days => 0)",
            "CALL recommender.build_item_model(adoption_days => 3651)",
            "CALL recommender.build_item_model(adoption_lambda => 0)",
            "CALL recommender.build_item_model(adoption_lambda => 'NaN')",
            "CALL recommender.build_item_model(adoption_weight => -0.1)",
            "CALL recommender.build_item_model(adoption_weight => 1.5)",
            "CALL recommender.build_item_model(adoption_weight => 'NaN')",
            "CALL recommender.build_item_model(adoption_weight => NULL)",
        ] {
            assert_eq!(sqlstate_of(call), "22023", "{call}");
        }
        // an empty store builds an empty model
        Spi::run("CALL recommender.build_item_model()").unwrap();
        assert_eq!(count("SELECT count(*) FROM recommender.item_neighbors"), 0);
    }
    #[pg_test]
    fn adoption_model_links_a_history_to_what_was_first_bought_after_it() {
        seed_store();
        let model = || {
            exts(
                "SELECT coalesce(string_agg(product_id || '>' || neighbor_id || '=' || score, ';'
                                            ORDER BY product_id, neighbor_id), '')
                    FROM recommender.item_neighbors",
            )
        };
        let links_from = |ext: &str| {
            count(&format!(
                "SELECT count(*) FROM recommender.item_neighbors n JOIN recommender.products p USING (product_id)
                  WHERE p.external_id = '{ext}'"
            ))
        };
        // EASE alone: coffee c1 is bought with milk m1
        Spi::run("CALL recommender.build_item_model(lambda => 1, adoption_weight => 0)").unwrap();
        assert_eq!(strongest_link("c1"), "m1");
        let ease = model();
        // in the 28 days before the clock only u_coffee first bought something (c2): too few to
        // learn from, so the blend is EASE alone
        Spi::run(
            "CALL recommender.build_item_model(lambda => 1, adoption_lambda => 1, adoption_weight => 1)",
        )
        .unwrap();
        assert_eq!(model(), ease);
        // 120 more customers who had c1 and first bought c2 in the window
        Spi::run(
            "INSERT INTO recommender.interactions (user_id, product_id, type, basket_id, occurred_at)
             SELECT 'u_new' || g, p.product_id, 'PURCHASE', 'n' || g || p.external_id,
                    CASE p.external_id WHEN 'c1' THEN '2024-01-10'::timestamptz ELSE '2024-02-20' END
               FROM generate_series(1, 120) g
               JOIN recommender.products p ON p.external_id IN ('c1', 'c2')",
        )
        .unwrap();
        // EASE links the two both ways; the adoption model alone only from the history (c1) to
        // what followed it (c2): nobody had c2 before the window
        Spi::run("CALL recommender.build_item_model(lambda => 1, adoption_weight => 0)").unwrap();
        assert!(links_from("c2") > 0);
        let ease = model();
        Spi::run(
            "CALL recommender.build_item_model(lambda => 1, adoption_lambda => 1, adoption_weight => 1)",
        )
        .unwrap();
        assert_eq!(strongest_link("c1"), "c2");
        assert_eq!(links_from("c2"), 0);
        // nobody first bought anything in the last day: the blend is EASE alone
        Spi::run(
            "CALL recommender.build_item_model(lambda => 1, adoption_days => 1, adoption_weight => 0.5)",
        )
        .unwrap();
        assert_eq!(model(), ease);
        // every build records the adoption model's arguments
        assert_eq!(
            exts(
                "SELECT string_agg(adoption_days || '/' || adoption_lambda || '/' || adoption_weight, ';' ORDER BY build_id)
                   FROM recommender.item_model_builds"
            ),
            "28/10000/0;28/1/1;28/10000/0;28/1/1;1/10000/0.5"
        );
    }
}
