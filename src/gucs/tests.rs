//! `#[pg_test]`s of the settings: what pg_settings shows against README.md's settings table (the
//! one place users read defaults), and the setting that exists only under preloading.
#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    use crate::testing::count;

    const README: &str = include_str!("../../README.md");

    /// (setting, README default, README context) for every row of README's "## Settings" table;
    /// a row naming several settings (`a` / `b`) gives several, with the defaults split alike.
    fn readme_settings() -> Vec<(String, String, String)> {
        let table = README
            .split("\n## Settings\n")
            .nth(1)
            .expect("README has a ## Settings section");
        let mut out = Vec::new();
        for line in table.lines().take_while(|l| !l.starts_with("## ")) {
            if !line.starts_with("| `recommender.") {
                continue;
            }
            let cols: Vec<&str> = line.split('|').map(str::trim).collect();
            let names: Vec<&str> = cols[1].split(" / ").collect();
            let defaults: Vec<&str> = if names.len() > 1 {
                cols[2].split(" / ").collect()
            } else {
                vec![cols[2]]
            };
            assert_eq!(names.len(), defaults.len(), "README row: {line}");
            for (n, d) in names.iter().zip(defaults) {
                let n = n.trim_matches('`');
                let n = if n.starts_with("recommender.") {
                    n.to_string()
                } else {
                    format!("recommender.{n}")
                };
                out.push((
                    n,
                    d.trim_matches('`').trim().to_lowercase(),
                    cols[3].to_string(),
                ));
            }
        }
        out
    }

    /// Whether README's default `d` says what pg_settings' boot value `boot` (in `unit`) is.
    fn same_default(d: &str, boot: &str, unit: &str) -> bool {
        if d.starts_with("empty") || d.starts_with('<') || d.starts_with('$') {
            // empty, or the effective path an empty setting stands for
            return boot.is_empty();
        }
        if let (Some(secs), "ms") = (d.strip_suffix(" s"), unit) {
            return secs.parse::<f64>().ok().map(|s| (s * 1000.0).to_string())
                == Some(boot.to_string());
        }
        match (d.parse::<f64>(), boot.parse::<f64>()) {
            (Ok(a), Ok(b)) => a == b,
            _ => d == boot,
        }
    }

    #[pg_test]
    fn readme_settings_table_matches_pg_settings() {
        let readme = readme_settings();
        let rows: Vec<(String, String, String, String)> = Spi::connect(|c| {
            let t = c.select(
                "SELECT name::text, coalesce(boot_val, ''), coalesce(unit, ''), context::text
                   FROM pg_settings WHERE name LIKE 'recommender.%' ORDER BY name",
                None,
                &[],
            )?;
            let mut v = Vec::new();
            for r in t {
                v.push((
                    r.get::<String>(1)?.unwrap(),
                    r.get::<String>(2)?.unwrap(),
                    r.get::<String>(3)?.unwrap(),
                    r.get::<String>(4)?.unwrap(),
                ));
            }
            Ok::<_, pgrx::spi::Error>(v)
        })
        .unwrap();
        assert!(rows.len() >= 25, "settings defined: {}", rows.len());
        for (name, boot, unit, context) in &rows {
            let Some((_, d, ctx)) = readme.iter().find(|r| &r.0 == name) else {
                panic!("{name} is missing from README's settings table");
            };
            assert!(
                same_default(d, boot, unit),
                "{name}: README says default {d}, pg_settings says {boot} {unit}"
            );
            let want = match context.as_str() {
                "superuser" => "superuser",
                "user" => "user",
                "sighup" => "reload (sighup)",
                "postmaster" => "server start",
                other => other,
            };
            assert_eq!(ctx, want, "{name}: README context");
        }
        // Only the preload-only settings are in README but not defined here.
        let absent: Vec<&str> = readme
            .iter()
            .filter(|r| !rows.iter().any(|s| s.0 == r.0))
            .map(|r| r.0.as_str())
            .collect();
        assert_eq!(
            absent,
            [
                "recommender.worker_databases",
                "recommender.workers_per_database"
            ]
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

    /// `page_settings_changed()` (0.27.0): every name it reads is a setting; a SET, a SET LOCAL or
    /// a set_config of one of them counts, a RESET undoes it, and other settings do not count.
    #[pg_test]
    fn page_settings_changed_in_the_session() {
        use crate::gucs::{page_settings_changed, PAGE_SETTINGS};
        for name in PAGE_SETTINGS {
            let name = name.to_str().unwrap();
            Spi::get_one_with_args::<String>("SELECT current_setting($1)", &[name.into()])
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        assert!(!page_settings_changed());
        Spi::run("SET recommender.log_impressions = on").unwrap();
        assert!(!page_settings_changed());
        Spi::run("SET recommender.rerank_weight = 0.4").unwrap();
        assert!(page_settings_changed());
        Spi::run("RESET recommender.rerank_weight").unwrap();
        assert!(!page_settings_changed());
        Spi::run("SELECT set_config('recommender.as_of', '2024-01-01', true)").unwrap();
        assert!(page_settings_changed());
        Spi::run("RESET recommender.as_of; SET LOCAL recommender.max_per_category = 2").unwrap();
        assert!(page_settings_changed());
    }
}
