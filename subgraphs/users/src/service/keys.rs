//! Token signing keys: the newest unretired key signs; when it is older than the
//! rotation period a new key takes over and the old one is retired, staying in the JWKS
//! until every token it signed has expired. Keys live in the database, so every process
//! of the users subgraph signs with the same key and publishes the same JWKS.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set,
};
use shop_kit::auth::SigningKey;
use shop_kit::{ApiError, ApiResult};
use tokio::sync::Mutex;

use crate::entity::signing_key;

/// Keys are read from the database again after this long (another process may have
/// rotated).
const RELOAD_AFTER: Duration = Duration::from_secs(60);
/// Clock skew verifiers allow; a retired key is published this much longer.
const LEEWAY: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct KeyRing {
    db: DatabaseConnection,
    rotation: Duration,
    access_ttl: Duration,
    cache: Arc<Mutex<Option<Loaded>>>,
}

/// The key rows and when they were read.
type Loaded = (Instant, Vec<signing_key::Model>);

impl KeyRing {
    pub fn new(db: DatabaseConnection, rotation: Duration, access_ttl: Duration) -> Self {
        KeyRing {
            db,
            rotation,
            access_ttl,
            cache: Arc::default(),
        }
    }

    /// The key to sign with now; rotates first when the current one is due.
    pub async fn signing_key(&self) -> ApiResult<SigningKey> {
        let keys = self.keys().await?;
        let now = chrono::Utc::now();
        let current = keys.iter().find(|k| k.retired_at.is_none());
        let due = current
            .is_none_or(|k| (now - k.created_at).to_std().unwrap_or_default() >= self.rotation);
        let model = if due {
            self.rotate().await?
        } else {
            current
                .cloned()
                .ok_or_else(|| ApiError::Internal("no signing key".into()))?
        };
        SigningKey::from_secret_string(&model.secret)
            .ok_or_else(|| ApiError::Internal(format!("signing key {} is corrupt", model.kid)))
    }

    /// Creates a new signing key and retires the others. Returns the new key's row.
    pub async fn rotate(&self) -> ApiResult<signing_key::Model> {
        let key = SigningKey::generate()?;
        let now = chrono::Utc::now();
        let txn = shop_kit::db::begin_write(&self.db).await?;
        signing_key::Entity::update_many()
            .col_expr(signing_key::Column::RetiredAt, Expr::value(now))
            .filter(signing_key::Column::RetiredAt.is_null())
            .exec(&txn)
            .await?;
        // Keys retired before the horizon verify nothing any more: this is the moment
        // they can go, not every JWKS request.
        signing_key::Entity::delete_many()
            .filter(signing_key::Column::RetiredAt.lt(self.horizon()))
            .exec(&txn)
            .await?;
        let model = signing_key::ActiveModel {
            kid: Set(key.kid().to_string()),
            secret: Set(key.to_secret_string()),
            created_at: Set(now),
            retired_at: Set(None),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        tracing::info!(kid = %model.kid, "token signing key rotated");
        *self.cache.lock().await = None;
        Ok(model)
    }

    /// Keys retired before this may have signed only tokens that have expired.
    fn horizon(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
            - chrono::Duration::from_std(self.access_ttl + LEEWAY).unwrap_or_default()
    }

    /// The public keys verifiers need: the signing key and every retired key whose
    /// tokens may still be valid.
    pub async fn jwks(&self) -> ApiResult<JwkSet> {
        // Make sure a key exists before the first token is signed, so the first JWKS
        // fetch already holds it.
        self.signing_key().await?;
        let keys = self.keys().await?;
        let horizon = self.horizon();
        let mut set = JwkSet { keys: Vec::new() };
        for k in &keys {
            if k.retired_at.is_some_and(|at| at < horizon) {
                continue;
            }
            if let Some(key) = SigningKey::from_secret_string(&k.secret) {
                set.keys.push(key.public_jwk());
            }
        }
        Ok(set)
    }

    async fn keys(&self) -> ApiResult<Vec<signing_key::Model>> {
        let mut cache = self.cache.lock().await;
        if let Some((at, keys)) = cache.as_ref()
            && at.elapsed() < RELOAD_AFTER
        {
            return Ok(keys.clone());
        }
        let keys = signing_key::Entity::find()
            .order_by_desc(signing_key::Column::CreatedAt)
            .all(&self.db)
            .await?;
        *cache = Some((Instant::now(), keys.clone()));
        Ok(keys)
    }
}
