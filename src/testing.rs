//! What the `#[pg_test]`s share: SPI shortcuts and the two seeded stores. Compiled only for
//! tests (`pg_test`); each module's tests sit beside it in its `tests.rs`.
use pgrx::prelude::*;

pub fn embed(text: &str) -> Vec<f32> {
    Spi::get_one_with_args::<Vec<f32>>("SELECT recommender._embed($1)", &[text.into()])
        .expect("spi")
        .expect("not null")
}

/// SQLSTATE raised by `sql`, or 00000.
pub fn sqlstate_of(sql: &str) -> String {
    Spi::run(
        "CREATE OR REPLACE FUNCTION pg_temp.sqlstate_of(q text) RETURNS text LANGUAGE plpgsql AS $f$
         BEGIN EXECUTE q; RETURN '00000'; EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE; END $f$",
    )
    .unwrap();
    Spi::get_one_with_args::<String>("SELECT pg_temp.sqlstate_of($1)", &[sql.into()])
        .unwrap()
        .unwrap()
}

pub fn count(sql: &str) -> i64 {
    Spi::get_one::<i64>(sql).unwrap().unwrap_or(0)
}

pub fn texts_embedded() -> i64 {
    count("SELECT texts_embedded FROM recommender.model_info()")
}

pub fn seed_catalogue() {
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

pub fn id_of(ext: &str) -> i64 {
    Spi::get_one_with_args::<i64>(
        "SELECT product_id FROM recommender.products WHERE external_id = $1",
        &[ext.into()],
    )
    .unwrap()
    .unwrap()
}

pub fn make_shop() {
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

/// Sets `recommender.cross_encoder_dir` to the test cross-encoder for the rest of the test.
pub fn use_test_cross_encoder() {
    Spi::run(&format!(
        "SET recommender.cross_encoder_dir = '{}'",
        test_cross_encoder_dir()
    ))
    .unwrap();
}

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
pub fn seed_store() {
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

/// `seed_store` plus a repeat buyer, u_milk: oat milk (m2) in four baskets two weeks apart, wired
/// earbuds (a3) once long ago and Earl Grey (t2) once lately.
pub fn seed_repeat_buyer() {
    seed_store();
    Spi::run(
        "INSERT INTO recommender.interactions (user_id, product_id, type, basket_id, occurred_at)
         SELECT 'u_milk', p.product_id, 'PURCHASE', e.b, e.at::timestamptz
           FROM (VALUES ('m2','r1','2024-01-10'), ('m2','r2','2024-01-24'), ('m2','r3','2024-02-07'),
                        ('m2','r4','2024-02-21'), ('a3','r1','2024-01-10'), ('t2','r4','2024-02-21'))
                AS e(ext, b, at)
           JOIN recommender.products p ON p.external_id = e.ext",
    )
    .unwrap();
}

pub fn exts(sql: &str) -> String {
    Spi::get_one::<String>(sql).unwrap().unwrap_or_default()
}
