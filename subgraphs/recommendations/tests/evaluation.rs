//! The offline evaluation, small: on the demo's structure (tastes drive 80 % of
//! purchases) the learner finds the tastes (twice popularity's hit rate, near the
//! oracle's); where best-sellers weigh more, it still beats popularity.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use shop_recommendations::RecsCtx;
use shop_recommendations::evaluation;
use shop_recommendations::synthetic::Shape;

async fn evaluate(shoppers: usize, in_taste: u64) -> evaluation::Report {
    let dir =
        std::env::temp_dir().join(format!("recs-eval-{}-{in_taste}", shop_kit::ids::new_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.join("recs.db").display());
    let db = shop_kit::db::connect(&url).await.unwrap();
    shop_migrations::up(&db, shop_recommendations::NAME)
        .await
        .unwrap();
    let shape = Shape {
        shoppers,
        in_taste_percent: in_taste,
        ..Shape::default()
    };
    let report = evaluation::run(&RecsCtx::new(db), shape, 7).await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    report
}

#[tokio::test]
async fn the_learner_finds_planted_tastes_and_beats_popularity() {
    let demo = evaluate(1_000, Shape::default().in_taste_percent).await;
    let popularity = demo.popularity.hit_rate;
    assert!(demo.recommended.hit_rate >= 2.0 * popularity, "{demo:?}");
    assert!(
        demo.recommended.hit_rate >= 0.9 * demo.oracle.hit_rate,
        "{demo:?}"
    );
    assert!(demo.also_bought.hit_rate >= 1.5 * popularity, "{demo:?}");
    assert!(demo.similar.hit_rate >= 1.5 * popularity, "{demo:?}");
    assert!(
        demo.recommended.ndcg > 2.0 * demo.popularity.ndcg,
        "{demo:?}"
    );
    let weak = evaluate(300, 60).await;
    assert!(
        weak.recommended.hit_rate > weak.popularity.hit_rate,
        "{weak:?}"
    );
}
