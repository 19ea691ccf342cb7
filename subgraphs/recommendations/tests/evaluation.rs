//! The offline evaluation, small: on a history where tastes drive purchases the
//! learner finds them (twice popularity's hit rate, near the oracle's); where
//! best-sellers do, it still beats popularity.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use shop_recommendations::RecsCtx;
use shop_recommendations::evaluation;
use shop_recommendations::synthetic::Shape;

async fn evaluate(in_taste: u64) -> evaluation::Report {
    let dir =
        std::env::temp_dir().join(format!("recs-eval-{}-{in_taste}", shop_kit::ids::new_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("recs.db").display());
    let db = shop_kit::db::connect(&url).await.unwrap();
    shop_migrations::up(&db, shop_recommendations::NAME)
        .await
        .unwrap();
    let shape = Shape {
        shoppers: 300,
        in_taste_percent: in_taste,
        ..Shape::default()
    };
    let report = evaluation::run(&RecsCtx::new(db), shape, 7).await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    report
}

#[tokio::test]
async fn the_learner_finds_planted_tastes_and_beats_popularity() {
    let strong = evaluate(90).await;
    assert!(
        strong.recommended.hit_rate >= 2.0 * strong.popularity.hit_rate,
        "{strong:?}"
    );
    assert!(
        strong.recommended.hit_rate >= 0.9 * strong.oracle.hit_rate,
        "{strong:?}"
    );
    assert!(
        strong.also_bought.hit_rate > strong.popularity.hit_rate,
        "{strong:?}"
    );
    let weak = evaluate(60).await;
    assert!(
        weak.recommended.hit_rate > weak.popularity.hit_rate,
        "{weak:?}"
    );
}
